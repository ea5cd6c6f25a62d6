"""The practice server on PostgreSQL: its certificate authority, the dev cluster, group roles."""
