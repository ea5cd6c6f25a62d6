"""patients.external_id: another system's record number from an imported roster

Revision ID: aa0a25ef2068
Revises: 2dd12020bf99
Create Date: 2026-11-25 22:21:30.622065
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "aa0a25ef2068"
down_revision = "2dd12020bf99"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_patients_external_id"), ["external_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_external_id"))
        batch_op.drop_column("external_id")
