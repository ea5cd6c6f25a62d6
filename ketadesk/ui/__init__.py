"""The PySide6 desktop interface, one sub-package per feature; common/ holds what all share.

The only layer that imports Qt. It calls storage, core and reports; nothing below imports it.
"""
