"""Treatment plan documents from the database: build, export (single and batch), verify.

May import core, models, reports and the other storage features.
"""
