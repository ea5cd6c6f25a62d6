"""dose_breach_alerts: home doses that broke a protocol safety rule, open until acknowledged

Revision ID: b5e1a9d20c07
Revises: aa0a25ef2068
Create Date: 2026-12-02 19:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b5e1a9d20c07"
down_revision = "aa0a25ef2068"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dose_breach_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("dose_log_id", sa.Integer(), nullable=False),
        sa.Column("kinds", sa.String(length=128), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_dose_breach_alerts_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dose_log_id"],
            ["dose_log.id"],
            name=op.f("fk_dose_breach_alerts_dose_log_id_dose_log"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dose_breach_alerts")),
        sa.UniqueConstraint("dose_log_id", name=op.f("uq_dose_breach_alerts_dose_log_id")),
    )
    with op.batch_alter_table("dose_breach_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_dose_breach_alerts_open", ["patient_id", "acknowledged_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("dose_breach_alerts", schema=None) as batch_op:
        batch_op.drop_index("ix_dose_breach_alerts_open")
    op.drop_table("dose_breach_alerts")
