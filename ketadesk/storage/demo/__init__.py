"""Synthetic demo practice (no real person): patients, reviews, protocols, outcomes.

May import everything in storage.
"""
