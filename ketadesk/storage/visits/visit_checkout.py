"""Check patients out to a visit pack: a new encrypted KetaDesk database holding only them.

The pack is made by the same code that creates a practice (a fresh database key, a key slot
opened by the checking-out user's password, their signed grant), given a second slot for a
physician when one is chosen (added as a user adds another: their own password, a fresh
signing key granted by the pack's first user), and then filled with the
patients' records, exactly as the practice holds them (same ids, unique ids and versions),
the practice's settings and limits, the knowledge-base version, the pack's identity and
lease, and the version each record started from. The practice records the lease.

From a practice server the same happens as the user checking out: the records are read with
their grants and the lease is written in their name; the pack is the same encrypted file.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.errors import UserFacingError
from ketadesk.core.mrn import normalise_mrn
from ketadesk.core.permissions import Actor, Role
from ketadesk.models.patients import Patient
from ketadesk.models.practice import PracticeSetting
from ketadesk.models.protocols import PracticeTemplate
from ketadesk.models.visits import VisitLease, VisitLeasePatient, VisitPackBase
from ketadesk.storage.practice.settings_store import get_setting
from ketadesk.storage.roster.roster_status import rebuild_roster_status
from ketadesk.storage.security import attempts
from ketadesk.storage.security.audit_log import record_event
from ketadesk.storage.security.audit_receipts import RECEIPT_FOLDER_SETTING
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import WRONG_CREDENTIALS, KeySlotFile
from ketadesk.storage.security.users import UserInfo, add_user, list_users
from ketadesk.storage.security.visit_pack_identity import (
    VisitPackIdentity,
    refuse_in_visit_pack,
    write_visit_pack_identity,
)
from ketadesk.storage.visits.visit_leases import OUTSTANDING
from ketadesk.storage.visits.visit_tables import READ_ONLY, TRAVELLING, read_only_fingerprint

if TYPE_CHECKING:
    from ketadesk.storage.server.server_practice import ServerPractice
    from ketadesk.storage.visits.visit_practice import VisitPractice

MAX_PATIENTS_PER_PACK = 200
_IN_CHUNK = 500


@dataclass(frozen=True)
class CheckoutResult:
    pack_id: str
    path: Path
    patient_count: int
    record_count: int
    expires_at: datetime
    # The physician whose own password also opens the pack (None: only the checking-out user).
    physician: str | None = None


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _IN_CHUNK] for i in range(0, len(ids), _IN_CHUNK)]


def patient_ids_for_mrns(session: Session, mrns: Sequence[str]) -> list[int]:
    """The patients' ids in the order given; every unknown MRN is named at once."""
    wanted = [normalise_mrn(m) for m in mrns if m.strip()]
    if not wanted:
        raise UserFacingError("Name at least one patient to check out (--patients MRN,MRN).")
    if len(set(wanted)) > MAX_PATIENTS_PER_PACK:
        raise UserFacingError(
            f"A visit pack holds at most {MAX_PATIENTS_PER_PACK} patients; the fewer it "
            "holds, the less a lost laptop exposes."
        )
    found = dict(
        session.execute(select(Patient.mrn, Patient.id).where(Patient.mrn.in_(wanted))).all()
    )
    missing = [m for m in wanted if m not in found]
    if missing:
        raise UserFacingError(
            "No patient has the MRN " + ", ".join(missing) + " in this practice; nothing was "
            "checked out."
        )
    return list(dict.fromkeys(found[m] for m in wanted))


def carried_rows(session: Session, patient_ids: Sequence[int]) -> dict[str, list[dict[str, Any]]]:
    """Every travelling row of these patients, by table, parents first."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for spec in TRAVELLING:
        table = spec.table
        found: list[dict[str, Any]] = []
        if spec.via in ("id", "patient_id"):
            keys: Sequence[int] = patient_ids
        else:
            keys = [r["id"] for r in rows.get(spec.links[spec.via], [])]
        for chunk in _chunks(list(keys)):
            found += [
                dict(r)
                for r in session.execute(
                    select(table).where(table.c[spec.via].in_(chunk)).order_by(table.c.id)
                ).mappings()
            ]
        rows[spec.name] = found
    return rows


def read_only_rows(session: Session) -> dict[str, list[dict[str, Any]]]:
    """The practice's records a home visit needs as they are (``visit_tables.READ_ONLY``)."""
    return {
        spec.name: [
            dict(r)
            for r in session.execute(select(spec.table).order_by(spec.table.c.id)).mappings()
        ]
        for spec in READ_ONLY
    }


def _refuse_patients_already_out(session: Session, patient_ids: Sequence[int]) -> None:
    taken = session.execute(
        select(Patient.mrn, VisitLease.checked_out_by)
        .join(VisitLeasePatient, VisitLeasePatient.patient_id == Patient.id)
        .join(VisitLease, VisitLease.id == VisitLeasePatient.lease_id)
        .where(VisitLease.status.in_(OUTSTANDING), Patient.id.in_(list(patient_ids)))
    ).all()
    if taken:
        names = ", ".join(f"{mrn} (by {who})" for mrn, who in taken)
        raise UserFacingError(
            f"Already on a visit laptop: {names}. Return or revoke that pack first; nothing "
            "was checked out."
        )


def check_out_patients(
    practice: VisitPractice,
    actor: Actor,
    mrns: Sequence[str],
    out_path: Path,
    password: str,
    *,
    days: int | None = None,
    physician: str | None = None,
    physician_password: str | None = None,
    now: datetime | None = None,
) -> CheckoutResult:
    """Write a visit pack of these patients to ``out_path`` (opened by ``password``, the
    checking-out user's, and by ``physician_password`` when a ``physician`` is chosen) and
    record its lease. Both passwords are checked before anything is written; nothing is left
    behind if anything fails."""
    from ketadesk.core.knowledge_base import load_knowledge_base

    refuse_in_visit_pack(practice.visit_pack, "Checking patients out")
    second = (
        None if physician is None
        else check_pack_physician(practice, actor, physician, physician_password or "", now)
    )
    now = now or datetime.now(UTC)
    out_path = Path(out_path)
    if out_path.exists() or KeySlotFile.path_for(out_path).exists():
        raise UserFacingError(f"{out_path} already exists; choose a new file for the visit pack.")
    if days is not None and not 1 <= days <= 30:
        raise UserFacingError("A visit pack's lease is 1 to 30 days.")
    with practice.session() as session:
        patient_ids = patient_ids_for_mrns(session, mrns)
        _refuse_patients_already_out(session, patient_ids)
        lease_days = days if days is not None else int(get_setting(session, "visit_lease_days"))
        grace_days = int(get_setting(session, "visit_grace_days"))
        rows = carried_rows(session, patient_ids)
        reference = read_only_rows(session)
        settings = [
            {c.name: getattr(s, c.name) for c in PracticeSetting.__table__.c}
            for s in session.execute(select(PracticeSetting)).scalars()
            if s.key != RECEIPT_FOLDER_SETTING
        ]
        templates = [
            {c.name: getattr(t, c.name) for c in PracticeTemplate.__table__.c}
            for t in session.execute(select(PracticeTemplate)).scalars()
        ]
    identity = VisitPackIdentity(
        pack_id=uuid.uuid4().hex,
        practice_database_id=practice.database_id,
        checked_out_by=actor.user_name,
        checked_out_by_full_name=actor.full_name,
        checked_out_at=now,
        expires_at=now + timedelta(days=lease_days),
        grace_days=grace_days,
        patient_count=len(patient_ids),
        kb_version=load_knowledge_base().version,
    )
    pack, pack_actor, _recovery_key = PracticeDatabase.create(
        out_path,
        user_name=actor.user_name,
        full_name=actor.full_name,
        password=password,
        role=actor.role.value,
    )
    # The recovery key is not kept: only the users' passwords open a pack.
    del _recovery_key
    try:
        if second is not None:
            _add_pack_physician(pack, pack_actor, second, physician_password or "")
        record_count = _fill_pack(
            pack, pack_actor, identity, rows, reference, settings, templates
        )
        with practice.session() as session:
            _refuse_patients_already_out(session, patient_ids)  # another desk, meanwhile
            session.add(
                VisitLease(
                    pack_id=identity.pack_id,
                    checked_out_by=actor.user_name,
                    checked_out_at=now,
                    expires_at=identity.expires_at,
                    status="out",
                    audit_seq_returned=0,
                    patients=[VisitLeasePatient(patient_id=pid) for pid in patient_ids],
                )
            )
            for pid in patient_ids:
                record_event(
                    session,
                    actor,
                    audit_actions.VISIT_PACK_CHECKED_OUT,
                    patient_id=pid,
                    detail=f"visit pack {identity.pack_id} until "
                    f"{identity.expires_at.date().isoformat()}"
                    + ("" if second is None else f", also opens for {second.user_name}"),
                )
    except BaseException:
        pack.close()
        for leftover in (
            out_path,
            Path(f"{out_path}-wal"),
            Path(f"{out_path}-shm"),
            KeySlotFile.path_for(out_path),
        ):
            leftover.unlink(missing_ok=True)
        raise
    pack.close()
    return CheckoutResult(
        identity.pack_id, out_path, len(patient_ids), record_count, identity.expires_at,
        None if second is None else second.user_name,
    )


def check_pack_physician(
    practice: VisitPractice,
    actor: Actor,
    physician: str,
    password: str,
    now: datetime | None = None,
) -> UserInfo:
    """The physician who may also open the pack, once their password is checked against
    their own key slot in the practice (a wrong one counts as a failed log-in of theirs), or
    on a server by logging in as them (their signing key stays on the server)."""
    name = physician.strip()
    if name == actor.user_name:
        raise UserFacingError(
            "The pack already opens with your own password; choose another physician, or "
            "none. Nothing was checked out."
        )
    # ``list_users`` reads a server's users too (there the database's roles are the grants).
    found = {u.user_name: u for u in list_users(cast("PracticeDatabase", practice))}.get(name)
    if found is None or not found.is_active or found.role != Role.PHYSICIAN:
        raise UserFacingError(
            f"{name[:64]!r} is not an active physician of this practice; only a physician "
            "may also open a visit pack. Nothing was checked out."
        )
    if not isinstance(practice, PracticeDatabase):
        return _check_physician_on_server(practice, name, password, found)
    wait = attempts.seconds_to_wait(practice.path, name, now)
    if wait:
        raise UserFacingError(
            f"Too many wrong passwords in a row for {name}. Wait {wait} seconds before trying "
            "again; nothing was checked out."
        )
    if not password:
        raise UserFacingError(
            f"Type {name}'s password: the pack opens with it too. Nothing was checked out."
        )
    try:
        practice.key_slots().open_user_slot(name, password)
    except UserFacingError:
        attempts.record_failure(practice.path, name, now)
        raise UserFacingError(
            f"That is not the password of {name} (the physician who would also open the "
            "pack); nothing was checked out."
        ) from None
    return found


def _check_physician_on_server(
    practice: ServerPractice, name: str, password: str, found: UserInfo
) -> UserInfo:
    """The server checks the physician's password (SCRAM) and counts a wrong one in its own
    log; nothing of theirs is kept here, not even the signing key it could unwrap."""
    if not password:
        raise UserFacingError(
            f"Type {name}'s password: the pack opens with it too. Nothing was checked out."
        )
    try:
        practice.confirm_password_of(name, password)
    except UserFacingError as error:
        if error.message != WRONG_CREDENTIALS:
            raise
        raise UserFacingError(
            f"That is not the password of {name} (the physician who would also open the "
            "pack); nothing was checked out."
        ) from None
    return found


def _add_pack_physician(
    pack: PracticeDatabase, pack_actor: Actor, physician: UserInfo, password: str
) -> None:
    """The physician's own slot and signed grant in the pack, as any user added there: a
    signing key of the pack's (their practice key never leaves the practice), so what they
    sign on the laptop is checked there and signed again at return, as for the user who
    took the pack."""
    add_user(
        pack,
        pack_actor,
        user_name=physician.user_name,
        full_name=physician.full_name,
        role=Role.PHYSICIAN,
        password=password,
        npi=physician.npi,
        dea_number=physician.dea_number,
        licence_states=physician.licence_states,
    )


def _fill_pack(
    pack: PracticeDatabase,
    pack_actor: Actor,
    identity: VisitPackIdentity,
    rows: dict[str, list[dict[str, Any]]],
    reference: dict[str, list[dict[str, Any]]],
    settings: list[dict[str, Any]],
    templates: list[dict[str, Any]],
) -> int:
    count = 0
    with pack.session() as session:
        write_visit_pack_identity(session, identity)
        if settings:
            session.execute(insert(PracticeSetting), settings)
        if templates:
            session.execute(insert(PracticeTemplate), templates)
        bases: list[dict[str, Any]] = []
        for spec in READ_ONLY:
            table_rows = reference[spec.name]
            if not table_rows:
                continue
            session.execute(insert(spec.table), table_rows)
            bases += [
                {"record_uid": read_only_fingerprint(spec, r), "table_name": spec.name,
                 "version": r["id"]}  # a read-only row is known by its id and fingerprint
                for r in table_rows
            ]
        for spec in TRAVELLING:
            table_rows = rows[spec.name]
            if not table_rows:
                continue
            session.execute(insert(spec.table), table_rows)
            count += len(table_rows)
            bases += [
                {"record_uid": r["uid"], "table_name": spec.name, "version": r.get("version", 0)}
                for r in table_rows
            ]
        if bases:
            session.execute(insert(VisitPackBase), bases)
        rebuild_roster_status(session)
        record_event(
            session, pack_actor, audit_actions.VISIT_PACK_CREATED,
            detail=f"visit pack {identity.pack_id}, {identity.patient_count} patients",
        )
    return count
