"""The practice's own configuration in the database: settings, dose limits, protocol templates.

May import core, models and storage.security.
"""
