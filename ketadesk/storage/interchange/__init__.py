"""Interchange: FHIR R4 (US Core) export and import, and the full practice export.

May import core, models, reports and the other storage features.
"""
