"""Administration (manage_users): users, practice settings, practice limits, the audit viewer."""
