"""patient_roster_status: the roster's clinical state kept per patient; the search indexes

Revision ID: 5b1f0c7e9a21
Revises: 7a51c0de0007
Create Date: 2026-12-02 19:30:00

The FTS5 search tables and their triggers are built here (and by the demo and the CSV import),
so the first open of a practice builds nothing. The stored statuses of an existing practice
are worked out once, the first time it is opened after this upgrade (that needs the knowledge
base and the services, which a migration must not import).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "5b1f0c7e9a21"
down_revision = "7a51c0de0007"
branch_labels = None
depends_on = None

_SEARCH_SCHEMA = (
    "CREATE INDEX IF NOT EXISTS ix_patients_roster_cover ON patients(id, last_name_folded, "
    "first_name_folded, mrn, first_name, middle_name, last_name, dob, sex, phone, state, "
    "county, status, last_visit_on)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS patient_mrn_end_fts USING fts5(ending)",
    "CREATE VIRTUAL TABLE IF NOT EXISTS patient_name_fts USING fts5(first_name_folded, "
    "last_name_folded, content='patients', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 0', prefix='1 2 3')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS patient_phone_fts USING fts5(phone_digits, "
    "content='patients', content_rowid='id', tokenize='trigram')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS patient_mrn_fts USING fts5(mrn, content='patients', "
    "content_rowid='id', tokenize='trigram')",
    "DROP TRIGGER IF EXISTS patients_search_ai",
    "DROP TRIGGER IF EXISTS patients_search_ad",
    "DROP TRIGGER IF EXISTS patients_search_au",
    "CREATE TRIGGER IF NOT EXISTS patients_search_ai2 AFTER INSERT ON patients BEGIN "
    "INSERT INTO patient_name_fts(rowid, first_name_folded, last_name_folded) "
    "VALUES (new.id, new.first_name_folded, new.last_name_folded); "
    "INSERT INTO patient_phone_fts(rowid, phone_digits) VALUES (new.id, new.phone_digits); "
    "INSERT INTO patient_mrn_fts(rowid, mrn) VALUES (new.id, new.mrn); "
    "INSERT INTO patient_mrn_end_fts(rowid, ending) "
    "VALUES (new.id, substr(new.mrn, -1) || ' e' || substr(new.mrn, -2)); END",
    "CREATE TRIGGER IF NOT EXISTS patients_search_ad2 AFTER DELETE ON patients BEGIN "
    "INSERT INTO patient_name_fts(patient_name_fts, rowid, first_name_folded, "
    "last_name_folded) VALUES ('delete', old.id, old.first_name_folded, old.last_name_folded); "
    "INSERT INTO patient_phone_fts(patient_phone_fts, rowid, phone_digits) "
    "VALUES ('delete', old.id, old.phone_digits); "
    "INSERT INTO patient_mrn_fts(patient_mrn_fts, rowid, mrn) VALUES ('delete', old.id, old.mrn); "
    "DELETE FROM patient_mrn_end_fts WHERE rowid = old.id; END",
    "CREATE TRIGGER IF NOT EXISTS patients_search_au2 AFTER UPDATE OF first_name_folded, "
    "last_name_folded, phone_digits, mrn ON patients BEGIN "
    "INSERT INTO patient_name_fts(patient_name_fts, rowid, first_name_folded, "
    "last_name_folded) VALUES ('delete', old.id, old.first_name_folded, old.last_name_folded); "
    "INSERT INTO patient_name_fts(rowid, first_name_folded, last_name_folded) "
    "VALUES (new.id, new.first_name_folded, new.last_name_folded); "
    "INSERT INTO patient_phone_fts(patient_phone_fts, rowid, phone_digits) "
    "VALUES ('delete', old.id, old.phone_digits); "
    "INSERT INTO patient_phone_fts(rowid, phone_digits) VALUES (new.id, new.phone_digits); "
    "INSERT INTO patient_mrn_fts(patient_mrn_fts, rowid, mrn) VALUES ('delete', old.id, old.mrn); "
    "INSERT INTO patient_mrn_fts(rowid, mrn) VALUES (new.id, new.mrn); "
    "DELETE FROM patient_mrn_end_fts WHERE rowid = old.id; "
    "INSERT INTO patient_mrn_end_fts(rowid, ending) "
    "VALUES (new.id, substr(new.mrn, -1) || ' e' || substr(new.mrn, -2)); END",
    "INSERT INTO patient_name_fts(patient_name_fts) VALUES ('rebuild')",
    "INSERT INTO patient_phone_fts(patient_phone_fts) VALUES ('rebuild')",
    "INSERT INTO patient_mrn_fts(patient_mrn_fts) VALUES ('rebuild')",
    "INSERT INTO patient_mrn_end_fts(rowid, ending) "
    "SELECT id, substr(mrn, -1) || ' e' || substr(mrn, -2) FROM patients",
)
_DROP_SEARCH_SCHEMA = (
    "DROP TRIGGER IF EXISTS patients_search_ai2",
    "DROP TRIGGER IF EXISTS patients_search_ad2",
    "DROP TRIGGER IF EXISTS patients_search_au2",
    "DROP TABLE IF EXISTS patient_mrn_end_fts",
    "DROP TABLE IF EXISTS patient_mrn_fts",
    "DROP TABLE IF EXISTS patient_phone_fts",
    "DROP TABLE IF EXISTS patient_name_fts",
)


def upgrade() -> None:
    op.create_table(
        "patient_roster_status",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("review_state", sa.String(length=8), nullable=False),
        sa.Column("protocol_state", sa.String(length=12), nullable=False),
        sa.Column("next_checkin_due", sa.Date(), nullable=True),
        sa.Column("next_due", sa.Date(), nullable=True),
        sa.Column("safety_alert", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_roster_status_patient_id_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient_roster_status")),
    )
    with op.batch_alter_table("patient_roster_status", schema=None) as batch_op:
        batch_op.create_index("ix_patient_roster_status_review", ["review_state"], unique=False)
        batch_op.create_index("ix_patient_roster_status_next_due", ["next_due"], unique=False)
        batch_op.create_index(
            "ix_patient_roster_status_checkin", ["next_checkin_due"], unique=False
        )
        batch_op.create_index("ix_patient_roster_status_safety", ["safety_alert"], unique=False)
    op.create_table(
        "roster_status_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kb_version", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_status_meta")),
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SEARCH_SCHEMA:
            op.execute(statement)


def downgrade() -> None:
    # The search schema goes too (the roster of an older version rebuilds its own at first use).
    if op.get_bind().dialect.name == "sqlite":
        for statement in _DROP_SEARCH_SCHEMA:
            op.execute(statement)
    op.drop_table("roster_status_meta")
    op.drop_table("patient_roster_status")
