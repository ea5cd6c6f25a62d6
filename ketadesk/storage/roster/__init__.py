"""The roster in SQL: search, filter, sort, page, and the clinical columns.

May import core, models and other storage features' public modules.
"""
