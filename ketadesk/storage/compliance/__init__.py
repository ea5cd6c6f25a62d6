"""Prescribing compliance: prescribers' credentials, PDMP look-ups, informed consent,
telemedicine records, prescriptions (checklist, issue, void, fills) and the compliance worklist.

May import core, models, reports, storage.security, storage.practice, storage.protocols and
storage.reviews. Every function takes a Session and returns frozen dataclasses.
"""
