"""First-run set-up, log-in, lock screen and idle watcher.

Imports ui.common and the layers below.
"""
