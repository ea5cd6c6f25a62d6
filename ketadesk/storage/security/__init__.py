"""Keys, key slots, failed attempts, the engine, the database lifecycle, migrations runner, users
and the audit trail.

May import core and models only.
"""
