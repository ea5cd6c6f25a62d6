"""patient_conditions.concept_id: the knowledge-base concept a picked or coded condition maps to

Revision ID: 7c14e2a9d0b1
Revises: 7c1e5d0a9b13
Create Date: 2026-12-02 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7c14e2a9d0b1"
down_revision = "7c1e5d0a9b13"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patient_conditions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("concept_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patient_conditions", schema=None) as batch_op:
        batch_op.drop_column("concept_id")
