"""The practice a visit pack leaves from and comes back to: a practice file or a practice server.

The pack itself is always an encrypted file on the laptop. Only the practice side differs:
on a file, a user's password opens their key slot; on a server, it is checked by logging in
as them (SCRAM), and every write of a return runs under the returning user's own grants, so
the server's guards may refuse one record (a laptop prescription returned by an admin). Such
a refusal is told apart here from any other error, so the record can wait for a physician
instead of failing the whole return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from sqlalchemy.exc import DBAPIError

from ketadesk.core.permissions import Actor

if TYPE_CHECKING:
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.server.server_practice import ServerPractice

    VisitPractice: TypeAlias = PracticeDatabase | ServerPractice

# SQLSTATEs of a write the server refused this user: a missing grant or a clinical column
# (insufficient_privilege), and a signed-row guard's sentence (raise_exception).
_REFUSED_STATES = ("42501", "P0001")


def is_practice_server(practice: VisitPractice) -> bool:
    """True for a practice on a server (no practice file on this computer)."""
    return practice.path is None


def check_own_password(practice: VisitPractice, actor: Actor, password: str) -> None:
    """Raise (``WRONG_CREDENTIALS``, or why the server could not be asked) unless
    ``password`` is ``actor``'s own (the pack opens with it): their key slot on a file, a
    log-in as them on a server."""
    from ketadesk.storage.security.database import PracticeDatabase

    if isinstance(practice, PracticeDatabase):
        practice.key_slots().open_user_slot(actor.user_name, password)
        return
    practice.confirm_password_of(actor.user_name, password)


def is_server_refusal(error: DBAPIError) -> bool:
    """True when the server's grants or guards refused one write to this user (any other
    error is not a refusal, and fails the whole return)."""
    return getattr(error.orig, "sqlstate", None) in _REFUSED_STATES
