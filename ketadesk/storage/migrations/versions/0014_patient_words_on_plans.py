"""review_decisions.note_for_patient and patients.emergency_contact_relationship

A decision note is printed on the patient's plan only when the physician marks it for the
patient (existing notes stay clinician-only); the emergency contact gets a relationship.

Revision ID: a1c2e3d40012
Revises: b2d3f4e50013
Create Date: 2026-12-02 22:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a1c2e3d40012"
# Chained after main's 0013 (compliance) when main was merged in; the lead may re-chain.
down_revision = "b2d3f4e50013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "note_for_patient", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("emergency_contact_relationship", sa.String(length=60), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_column("emergency_contact_relationship")
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.drop_column("note_for_patient")
