"""visit packs: a unique id on every record that travels, a version on every editable one,
leases of checked-out patients, the conflict queue, and (in a pack) the versions it started from

Revision ID: c3e4f5a60014
Revises: b2d3f4e50013
Create Date: 2026-12-02 22:20:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "c3e4f5a60014"
down_revision = "a1c2e3d40012"
branch_labels = None
depends_on = None

# Records that travel to a visit pack and back: (table, editable?).
_TRAVELLING = (
    ("patients", True),
    ("patient_medications", True),
    ("patient_conditions", True),
    ("patient_allergies", True),
    ("vital_signs", False),
    ("patient_status_changes", False),
    ("checkins", False),
    ("checkin_symptoms", False),
    ("questionnaire_responses", False),
    ("safety_alert_acks", False),
    ("dose_log", False),
    ("dose_breach_alerts", True),
    ("patient_protocols", True),
    ("protocol_versions", True),
    ("interaction_reviews", True),
    ("review_decisions", True),
    ("content_signatures", False),
)


def _backfill_uids(table: str) -> None:
    """A fresh UUID for every existing row (plain ALTER TABLE: a table rebuild would drop the
    search triggers some of these tables carry)."""
    connection = op.get_bind()
    ids = [row[0] for row in connection.execute(sa.text(f"SELECT id FROM {table}"))]
    if ids:
        connection.execute(
            sa.text(f"UPDATE {table} SET uid = :uid WHERE id = :id"),
            [{"uid": uuid.uuid4().hex, "id": row_id} for row_id in ids],
        )


def upgrade() -> None:
    for table, editable in _TRAVELLING:
        op.add_column(table, sa.Column("uid", sa.String(length=32), nullable=True))
        _backfill_uids(table)
        op.create_index(f"uq_{table}_uid", table, ["uid"], unique=True)
        if editable:
            op.add_column(
                table, sa.Column("version", sa.Integer(), nullable=False, server_default="1")
            )
    op.create_table(
        "visit_leases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pack_id", sa.String(length=32), nullable=False),
        sa.Column("checked_out_by", sa.String(length=64), nullable=False),
        sa.Column("checked_out_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revoked_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("returned_by", sa.String(length=64), nullable=True),
        sa.Column("returned_at", sa.DateTime(), nullable=True),
        sa.Column("audit_seq_returned", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('out', 'returned', 'revoked', 'expired')",
            name=op.f("ck_visit_leases_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_leases")),
        sa.UniqueConstraint("pack_id", name=op.f("uq_visit_leases_pack_id")),
    )
    op.create_table(
        "visit_lease_patients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lease_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["lease_id"], ["visit_leases.id"],
            name=op.f("fk_visit_lease_patients_lease_id_visit_leases"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"],
            name=op.f("fk_visit_lease_patients_patient_id_patients"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_lease_patients")),
        sa.UniqueConstraint(
            "lease_id", "patient_id", name="uq_visit_lease_patients_lease_patient"
        ),
    )
    op.create_index(
        op.f("ix_visit_lease_patients_patient_id"), "visit_lease_patients", ["patient_id"]
    )
    op.create_table(
        "visit_conflicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pack_id", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("record_uid", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        sa.Column("office_version", sa.Integer(), nullable=True),
        sa.Column("office_json", sa.Text(), nullable=False),
        sa.Column("visit_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.String(length=64), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'resolved')", name=op.f("ck_visit_conflicts_status_known")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_conflicts")),
        sa.UniqueConstraint("pack_id", "record_uid", name="uq_visit_conflicts_pack_record"),
    )
    op.create_index("ix_visit_conflicts_status", "visit_conflicts", ["status"])
    op.create_index(op.f("ix_visit_conflicts_patient_id"), "visit_conflicts", ["patient_id"])
    op.create_table(
        "visit_pack_base",
        sa.Column("record_uid", sa.String(length=32), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("record_uid", name=op.f("pk_visit_pack_base")),
    )
    op.create_table(
        "visit_synced_records",
        sa.Column("pack_id", sa.String(length=32), nullable=False),
        sa.Column("record_uid", sa.String(length=32), nullable=False),
        sa.Column("visit_version", sa.Integer(), nullable=False),
        sa.Column("office_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("pack_id", "record_uid", name=op.f("pk_visit_synced_records")),
    )


def downgrade() -> None:
    op.drop_table("visit_synced_records")
    op.drop_table("visit_pack_base")
    op.drop_index("ix_visit_conflicts_patient_id", table_name="visit_conflicts")
    op.drop_index("ix_visit_conflicts_status", table_name="visit_conflicts")
    op.drop_table("visit_conflicts")
    op.drop_index("ix_visit_lease_patients_patient_id", table_name="visit_lease_patients")
    op.drop_table("visit_lease_patients")
    op.drop_table("visit_leases")
    for table, editable in reversed(_TRAVELLING):
        op.drop_index(f"uq_{table}_uid", table_name=table)
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("uid")
            if editable:
                batch_op.drop_column("version")
