"""patient_medications: who stopped a medication line, when, and why

Revision ID: 7c1e5d0a9b13
Revises: 5b1f0c7e9a21
Create Date: 2026-12-02 19:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7c1e5d0a9b13"
down_revision = "5b1f0c7e9a21"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient_medications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stopped_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("stopped_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("stop_reason", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("stop_note", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient_medications", schema=None) as batch_op:
        batch_op.drop_column("stop_note")
        batch_op.drop_column("stop_reason")
        batch_op.drop_column("stopped_at")
        batch_op.drop_column("stopped_by")
