"""visit packs: compliance records (consents, PDMP look-ups, telemedicine records,
prescriptions and fills) and printed signed plans travel too: a unique id on each, a version
on prescriptions (voiding is their one edit)

Revision ID: d4e5f6a70016
Revises: c3e4f5a60014
Create Date: 2026-12-03 12:00:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "d4e5f6a70016"
down_revision = "c3e4f5a60014"
branch_labels = None
depends_on = None

# (table, editable?)
_NOW_TRAVELLING = (
    ("consent_records", False),
    ("pdmp_checks", False),
    ("telemedicine_records", False),
    ("prescriptions", True),
    ("prescription_fills", False),
    ("signed_plan_contents", False),
)


def _backfill_uids(table: str) -> None:
    """A fresh UUID for every existing row. On a practice server these tables are frozen by
    triggers (``storage/server/signed_records``): the migration, run by the schema's owner,
    sets them aside for its own transaction only."""
    connection = op.get_bind()
    ids = [row[0] for row in connection.execute(sa.text(f"SELECT id FROM {table}"))]
    if not ids:
        return
    on_server = connection.dialect.name == "postgresql"
    if on_server:
        connection.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    connection.execute(
        sa.text(f"UPDATE {table} SET uid = :uid WHERE id = :id"),
        [{"uid": uuid.uuid4().hex, "id": row_id} for row_id in ids],
    )
    if on_server:
        connection.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


def upgrade() -> None:
    for table, editable in _NOW_TRAVELLING:
        op.add_column(table, sa.Column("uid", sa.String(length=32), nullable=True))
        _backfill_uids(table)
        op.create_index(f"uq_{table}_uid", table, ["uid"], unique=True)
        if editable:
            op.add_column(
                table, sa.Column("version", sa.Integer(), nullable=False, server_default="1")
            )


def downgrade() -> None:
    for table, editable in reversed(_NOW_TRAVELLING):
        op.drop_index(f"uq_{table}_uid", table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("uid")
            if editable:
                batch_op.drop_column("version")
