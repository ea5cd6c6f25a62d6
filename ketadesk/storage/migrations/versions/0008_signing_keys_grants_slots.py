"""signing keys: signed user grants, the slot allow-list, content signatures, signed audit events

Revision ID: 7a51c0de0007
Revises: b5e1a9d20c07
Create Date: 2026-12-02 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "7a51c0de0007"
down_revision = "b5e1a9d20c07"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_grants",
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("can_manage_users", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=True),
        sa.Column("proposed_public_key", sa.String(length=64), nullable=True),
        sa.Column("retired_public_keys", sa.String(length=2000), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("user_name", name=op.f("pk_user_grants")),
    )
    op.create_table(
        "slot_grants",
        sa.Column("slot_id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("slot_id", name=op.f("pk_slot_grants")),
    )
    op.create_index(op.f("ix_slot_grants_owner"), "slot_grants", ["owner"], unique=False)
    op.create_table(
        "content_signatures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_kind", sa.String(length=32), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_by", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(), nullable=False),
        sa.Column("signature", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_signatures")),
    )
    op.create_index(
        op.f("ix_content_signatures_subject_id"), "content_signatures", ["subject_id"], unique=False
    )
    # Plain ADD COLUMN (no batch copy): rebuilding audit_events would drop its append-only
    # triggers.
    op.add_column("audit_events", sa.Column("signed_by", sa.String(length=64), nullable=True))
    op.add_column("audit_events", sa.Column("signature", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_events", "signature")
    op.drop_column("audit_events", "signed_by")
    op.drop_index(op.f("ix_content_signatures_subject_id"), table_name="content_signatures")
    op.drop_table("content_signatures")
    op.drop_index(op.f("ix_slot_grants_owner"), table_name="slot_grants")
    op.drop_table("slot_grants")
    op.drop_table("user_grants")
