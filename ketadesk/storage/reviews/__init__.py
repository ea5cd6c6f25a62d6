"""Interaction reviews: inputs from the chart, decisions, sign-off snapshots, stale status.

May import core, models, storage.security, storage.patients.
"""
