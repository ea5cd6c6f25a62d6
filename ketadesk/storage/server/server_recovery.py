"""The recovery key of a practice server: made at ``server init``, replaced by a user who
manages users (``server recovery-key``), and used (``server recover``) to give a user who
manages users a new password when they forgot theirs, so a practice whose only user manager is
locked out keeps its records without calling on the server's superuser.

The key has the same alphabet and layout as a practice file's (eight groups of four). On a
server it is two things at once:

- the SCRAM password of the practice's recovery role (``recovery_role``): a login role that is
  a member of no group, reads and writes no table and may call one function, which sets a new
  password for an active user who manages users and nothing else. It cannot read a record;
- the seed of an Ed25519 key (HKDF-SHA256 with the practice's id) that signs the
  ``recovery_key_used`` audit event; its public half is listed in ``server_public_keys`` under
  ``recovery key`` (the name a file uses too) when the key is made, so ``verify-audit``
  accepts that event, names one forged in its name and refuses the key on any other event.

The client makes both from the key; the server sees only the SCRAM verifier and the public
key, never the key itself (nothing of it reaches the server's logs).
"""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from ketadesk.core import audit_actions
from ketadesk.core.audit_chain import event_hash
from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.password_rules import check_new_password
from ketadesk.storage.security.signing_keys import (
    RECOVERY_SIGNER,
    Signer,
    audit_event_message,
    public_key_of,
)
from ketadesk.storage.server.practice_roles import connection_problem
from ketadesk.storage.server.recovery_role import RECOVERY_EVENT_ROLE, recovery_role_name
from ketadesk.storage.server.server_engine import (
    ServerAddress,
    WorkstationCertificate,
    check_workstation_files,
    create_server_engine,
)
from ketadesk.storage.server.server_practice import _scram_verifier, check_server_user_name

_KEY_LENGTH = 32  # letters and digits, without the dashes
_SIGNING_INFO = b"ketadesk-server-recovery-signing-key-1"

WRONG_RECOVERY_KEY = (
    "That recovery key does not open this practice server (it may have been replaced by a "
    "newer one). Nothing was changed."
)


def normalised_recovery_key(recovery_key: str) -> str:
    """The key as the server knows it: upper case, without dashes or spaces."""
    normalised = "".join(ch for ch in recovery_key.upper() if ch.isalnum())
    if len(normalised) != _KEY_LENGTH or not normalised.isascii():
        raise UserFacingError(
            "That is not a recovery key: it has 32 letters and digits in eight groups of "
            "four, as 'server init' printed it. Nothing was changed."
        )
    return normalised


def recovery_signing_key(recovery_key: str, database_id: str) -> bytes:
    """The raw Ed25519 private key the recovery key signs its audit event with."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=database_id.encode("utf-8"),
        info=_SIGNING_INFO,
    ).derive(normalised_recovery_key(recovery_key).encode("ascii"))


def set_recovery_key(session: Session, database: str, database_id: str, recovery_key: str) -> None:
    """Make (or replace) the practice's recovery role with ``recovery_key`` as its password and
    list its public signing key, in the caller's transaction (the caller records the event)."""
    role = recovery_role_name(database)
    engine = session.get_bind().engine
    verifier = _scram_verifier(engine, role, normalised_recovery_key(recovery_key))
    public_key = public_key_of(recovery_signing_key(recovery_key, database_id))
    session.execute(
        text("SELECT ketadesk_set_recovery_key(:verifier, :public_key)"),
        {"verifier": verifier, "public_key": public_key},
    )


def has_recovery_role(session: Session, database: str) -> bool:
    """Whether the server holds the practice's recovery role (one made before recovery keys
    existed on servers has none until a user manager makes one)."""
    return (
        session.execute(
            text("SELECT 1 FROM pg_roles WHERE rolname = :name"),
            {"name": recovery_role_name(database)},
        ).first()
        is not None
    )


def recover_user_manager(
    address: ServerAddress,
    ca_certificate: Path,
    recovery_key: str,
    user_name: str,
    new_password: str,
    workstation_certificate: WorkstationCertificate | None = None,
) -> None:
    """Give ``user_name`` (an active user who manages users) ``new_password`` with the
    practice's recovery key. Their signing key is dropped (their next log-in makes a new one)
    and the signed ``recovery_key_used`` event is appended, in one transaction. A wrong key,
    another user or a weak password is refused in words and nothing changes."""
    check_server_user_name(user_name)
    check_new_password(new_password, user_name)
    password = normalised_recovery_key(recovery_key)
    if not ca_certificate.is_file():
        raise UserFacingError(
            f"The practice certificate {ca_certificate} is missing; it is installed once "
            "per workstation and needed to check the server is the practice's."
        )
    if workstation_certificate is not None:
        check_workstation_files(workstation_certificate)
    role = recovery_role_name(address.database)
    engine = create_server_engine(
        address, role, password, ca_certificate, workstation_certificate
    )
    try:
        try:
            with engine.connect():
                pass
        except OperationalError as error:
            detail = str(error.orig) if error.orig is not None else str(error)
            if "password authentication failed" in detail or "does not exist" in detail:
                raise UserFacingError(WRONG_RECOVERY_KEY) from None
            raise UserFacingError(
                connection_problem(detail, role, address.host, address.port)
            ) from None
        verifier = _scram_verifier(engine, user_name, new_password)
        call = text(
            "SELECT database_id, next_seq, prev_hash, now_utc, detail "
            "FROM ketadesk_recover_user_manager(:name, :verifier, :at, :signature)"
        )
        try:
            with engine.begin() as connection:
                database_id, seq, prev_hash, now, detail = connection.execute(
                    call, {"name": user_name, "verifier": verifier, "at": None,
                           "signature": None},
                ).one()
                occurred_at = now.replace(tzinfo=UTC)
                row_hash = event_hash(
                    prev_hash, seq, occurred_at, RECOVERY_SIGNER, RECOVERY_EVENT_ROLE, None,
                    audit_actions.RECOVERY_KEY_USED, detail,
                )
                signer = Signer(RECOVERY_SIGNER, recovery_signing_key(password, database_id))
                signature = signer.sign(
                    audit_event_message(
                        database_id, seq=seq, row_hash=row_hash, signed_by=RECOVERY_SIGNER
                    )
                )
                connection.execute(
                    call,
                    {"name": user_name, "verifier": verifier, "at": now,
                     "signature": signature},
                ).one()
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == "P0001":
                message = error.orig.diag.message_primary  # type: ignore[union-attr]
                raise UserFacingError(f"{message} Nothing was changed.") from None
            raise
    finally:
        engine.dispose()

