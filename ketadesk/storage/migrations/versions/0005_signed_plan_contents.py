"""signed plan contents: each distinct printed plan of a signed protocol version, for verify-plan

Revision ID: 2dd12020bf99
Revises: c261b8b088ad
Create Date: 2026-11-25 22:01:59.768825
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "2dd12020bf99"
down_revision = "c261b8b088ad"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_plan_contents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("protocol_version_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("document_json", sa.Text(), nullable=False),
        sa.Column("calendar_weeks_shown", sa.Integer(), nullable=False),
        sa.Column("first_exported_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["protocol_version_id"],
            ["protocol_versions.id"],
            name=op.f("fk_signed_plan_contents_protocol_version_id_protocol_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signed_plan_contents")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_signed_plan_contents_content_hash")),
    )
    with op.batch_alter_table("signed_plan_contents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signed_plan_contents_protocol_version_id"),
            ["protocol_version_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("signed_plan_contents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signed_plan_contents_protocol_version_id"))
    op.drop_table("signed_plan_contents")
