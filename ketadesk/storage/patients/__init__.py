"""The patient chart service: demographics, medications, conditions, vitals, status, CSV import.

May import core, models, storage.security.
"""
