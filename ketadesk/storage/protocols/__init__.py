"""Patient protocols: drafts, signing, versions, diffs, discontinuation.

May import core, models, storage.security, storage.practice, storage.reviews.
"""
