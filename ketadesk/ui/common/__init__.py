"""What every screen shares: the session context, the op runner, forms, dialog parts, date helpers.

Imports PySide6 and the layers below, never another ui feature.
"""
