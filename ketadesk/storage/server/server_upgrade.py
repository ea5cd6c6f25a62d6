"""Bring a practice database on a server to this KetaDesk: migrations, grants and triggers.

``apply_server_objects`` is everything a practice server holds besides the tables Alembic makes:
the group roles' grants and the user functions (``practice_grants``), the triggers freezing
signed records (``signed_records``) and keeping clinical columns to physicians
(``clinical_columns``), the triggers notifying workstations of changes (``live_updates``), and
the search indexes (full-text and trigram). Every statement is ``CREATE OR
REPLACE``, ``IF NOT EXISTS`` or a REVOKE-then-GRANT, so running it again changes nothing and
running it after a new KetaDesk brings the server's rules to that version's. ``server init``,
``server upgrade``, ``restore`` and ``server import-practice`` all run it, as the schema's
owner, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.roster.roster_sql import SERVER_SEARCH_INDEXES
from ketadesk.storage.security.migrate import PACKAGED_HEAD, current_revision, upgrade_to_head
from ketadesk.storage.server.clinical_columns import apply_clinical_column_guards
from ketadesk.storage.server.live_updates import apply_live_update_triggers
from ketadesk.storage.server.practice_grants import apply_practice_grants
from ketadesk.storage.server.practice_roles import connection_problem
from ketadesk.storage.server.recovery_role import recovery_role_name
from ketadesk.storage.server.server_credentials import apply_credentials_function
from ketadesk.storage.server.server_engine import ServerAddress, create_server_engine
from ketadesk.storage.server.signed_records import apply_signed_record_guards


def apply_server_objects(connection: Any) -> None:
    """Grants, user functions, guards, live-update triggers and search indexes, on a
    connection of the owner."""
    apply_practice_grants(connection)
    apply_credentials_function(connection)
    apply_signed_record_guards(connection)
    apply_clinical_column_guards(connection)
    apply_live_update_triggers(connection)
    for statement in SERVER_SEARCH_INDEXES:
        connection.exec_driver_sql(statement)
    # The planner's figures for the search indexes' expressions (a new index has none until
    # autovacuum's next pass): a fraction of a second at 50,000 patients.
    connection.exec_driver_sql("ANALYZE patients")


@dataclass(frozen=True)
class ServerUpgrade:
    """What ``upgrade_server_practice`` found and left."""

    before: str | None
    after: str
    # A practice made before servers had recovery keys has none: upgrade never invents one
    # (it would have to be shown to someone), it says how a user manager makes one.
    has_recovery_key: bool = True

    def describe(self, address: ServerAddress) -> str:
        if self.before == self.after:
            done = (
                f"The practice at {address.url} was already at schema {self.after}; its "
                "grants and triggers were applied again."
            )
        else:
            done = (
                f"Upgraded the practice at {address.url} from schema {self.before} to "
                f"{self.after}, and applied its grants and triggers."
            )
        if self.has_recovery_key:
            return done
        return (
            f"{done} This practice has no recovery key yet: a user who manages users makes "
            f"one with 'server recovery-key --db {address.url} --as NAME' and keeps it offline."
        )


def upgrade_engine(engine: Engine) -> ServerUpgrade:
    """Run the migrations (if any) and apply the server objects on an owner's engine."""
    before = current_revision(engine)
    if before is None:
        raise UserFacingError(
            "That database holds no KetaDesk practice yet; create one with 'server init' or "
            "'server import-practice'. Nothing was changed."
        )
    if before != PACKAGED_HEAD:
        from alembic.util.exc import CommandError

        try:
            upgrade_to_head(engine)
        except CommandError:
            raise UserFacingError(
                f"The practice database is at schema {before}, which this KetaDesk does not "
                f"know (it knows up to {PACKAGED_HEAD}); it may be newer. Use the KetaDesk "
                "version the server was last upgraded with. Nothing was changed."
            ) from None
    with engine.begin() as connection:
        apply_server_objects(connection)
        has_key = connection.exec_driver_sql(
            "SELECT 1 FROM pg_roles WHERE rolname = %(name)s",
            {"name": recovery_role_name(engine.url.database or "")},
        ).first()
    return ServerUpgrade(before, PACKAGED_HEAD, has_key is not None)


def upgrade_server_practice(
    address: ServerAddress, ca_certificate: Path, owner: str, owner_password: str
) -> ServerUpgrade:
    """``server upgrade``: connect as the schema's owner and bring the practice up to date."""
    engine = owner_engine(address, ca_certificate, owner, owner_password)
    try:
        return upgrade_engine(engine)
    finally:
        engine.dispose()


def owner_engine(
    address: ServerAddress, ca_certificate: Path, owner: str, owner_password: str
) -> Engine:
    """An engine of the schema's owner, connected once to check the password and the server."""
    from sqlalchemy.exc import OperationalError

    if not ca_certificate.is_file():
        raise UserFacingError(
            f"The practice certificate {ca_certificate} is missing; it is needed to check the "
            "server is the practice's."
        )
    engine = create_server_engine(address, owner, owner_password, ca_certificate)
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        engine.dispose()
        detail = str(error.orig) if error.orig is not None else str(error)
        raise UserFacingError(
            connection_problem(detail, owner, address.host, address.port)
        ) from None
    return engine
