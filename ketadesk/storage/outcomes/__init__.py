"""Check-ins, questionnaires, the home dose log, item-9 alerts and monitoring due dates.

May import core, models, storage.security, storage.protocols.
"""
