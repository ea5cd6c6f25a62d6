"""Roles and what each may do. Physicians do all clinical work and sign; admins keep the roster."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ketadesk.core.password_strength import password_weakness


class Role(StrEnum):
    PHYSICIAN = "physician"
    ADMIN = "admin"


class Permission(StrEnum):
    VIEW_ROSTER = "view_roster"
    EDIT_DEMOGRAPHICS = "edit_demographics"
    RECORD_REPORTED_MEDICATION = "record_reported_medication"
    VERIFY_MEDICATION = "verify_medication"
    EDIT_CLINICAL = "edit_clinical"
    SIGN = "sign"
    EXPORT_PLANS = "export_plans"
    MANAGE_USERS = "manage_users"
    # Compliance: PDMP look-ups (a physician or an admin as designee), consent forms and
    # records, prescriptions (physicians only: they hold EDIT_CLINICAL and SIGN).
    RECORD_PDMP_CHECK = "record_pdmp_check"
    PRINT_CONSENT_FORM = "print_consent_form"
    RECORD_CONSENT = "record_consent"
    ISSUE_PRESCRIPTION = "issue_prescription"
    RECORD_DISPENSING = "record_dispensing"


_ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PHYSICIAN: frozenset(Permission) - {Permission.MANAGE_USERS},
    Role.ADMIN: frozenset(
        {
            Permission.VIEW_ROSTER,
            Permission.EDIT_DEMOGRAPHICS,
            Permission.RECORD_REPORTED_MEDICATION,
            Permission.EXPORT_PLANS,
            Permission.RECORD_PDMP_CHECK,
            Permission.PRINT_CONSENT_FORM,
            Permission.RECORD_CONSENT,
            Permission.RECORD_DISPENSING,
        }
    ),
}


@dataclass(frozen=True)
class Actor:
    """The logged-in user, as the domain sees them (no ORM row, no password)."""

    user_id: int
    user_name: str
    full_name: str
    role: Role
    can_manage_users: bool

    def can(self, permission: Permission) -> bool:
        if permission is Permission.MANAGE_USERS:
            return self.can_manage_users
        return permission in _ROLE_PERMISSIONS[self.role]

    @property
    def is_physician(self) -> bool:
        return self.role is Role.PHYSICIAN


def require(actor: Actor, permission: Permission, doing: str) -> None:
    """Raise a clear error when ``actor`` may not do ``doing``."""
    from ketadesk.core.errors import UserFacingError

    if not actor.can(permission):
        who = (
            "physicians"
            if permission
            in (
                Permission.SIGN,
                Permission.EDIT_CLINICAL,
                Permission.VERIFY_MEDICATION,
                Permission.ISSUE_PRESCRIPTION,
            )
            else "users who manage users"
            if permission is Permission.MANAGE_USERS
            else "other users"
        )
        raise UserFacingError(f"Only {who} may {doing}.", exit_code=3)


def password_problem(
    password: str,
    user_name: str = "",
    *,
    practice_name: str = "",
    current_password: str | None = None,
) -> str | None:
    """A sentence saying why a new password is not acceptable, or None when it is
    (see ``ketadesk.core.password_strength``)."""
    return password_weakness(
        password,
        user_name=user_name,
        practice_name=practice_name,
        current_password=current_password,
    )
