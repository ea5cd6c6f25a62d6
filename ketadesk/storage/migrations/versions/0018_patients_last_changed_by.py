"""concurrent edits: who last changed a patient's details (``patients.updated_by``), named on
the conflict screen when a save meets someone else's change (the version, the
``version_id_col`` that detects it, came with the visit packs)

Revision ID: f6a7b8c90018
Revises: d4e5f6a70016
Create Date: 2026-12-03 15:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f6a7b8c90018"
down_revision = "d4e5f6a70016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: charts saved before this revision have no recorded last editor.
    op.add_column("patients", sa.Column("updated_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("patients") as batch_op:
        batch_op.drop_column("updated_by")
