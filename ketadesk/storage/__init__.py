"""Services over the practice database, one sub-package per feature; migrations/ beside them.

Qt-free: may import core, models and reports, never PySide6 or ketadesk.ui.
"""
