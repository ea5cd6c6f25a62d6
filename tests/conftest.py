"""Shared test set-up: Qt on a real X server (Xvfb, started by pytest-xvfb), no keyring, every
database a real encrypted file in a temp folder (copied from one prepared per test session, so
argon2id is paid once)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Tests never touch the developer's real keyring.
os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"

from ketadesk.storage.roster.roster_status import install_status_tracking

install_status_tracking()  # as the app and the CLI do at start

PHYSICIAN = "drquill"
ADMIN = "frontdesk"
PASSWORD = "correct horse battery"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Run Qt on the X server pytest-xvfb started (keys, focus and wheel behave as on a desk).

    Only with ``--no-xvfb`` (or where Xvfb is missing) do the tests fall back to the platform
    named in QT_QPA_PLATFORM, else offscreen; the QApplication is made once, after this hook.
    """
    plugin = config.pluginmanager.get_plugin("xvfb")
    display = getattr(getattr(plugin, "xvfb_instance", None), "display", None)
    if display is not None:
        os.environ["QT_QPA_PLATFORM"] = "xcb"
    else:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@dataclass
class OpenPractice:
    db: object  # ketadesk.storage.security.database.PracticeDatabase
    physician: object  # ketadesk.core.permissions.Actor
    admin: object
    path: Path


@pytest.fixture(scope="session")
def prepared_practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty practice database with a physician (manages users) and an admin."""
    from ketadesk.core.permissions import Role
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.users import add_user

    path = tmp_path_factory.mktemp("prepared") / "practice.db"
    db, physician, _ = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Rowan Quill", password=PASSWORD
    )
    add_user(
        db,
        physician,
        user_name=ADMIN,
        full_name="Sam Frontdesk",
        role=Role.ADMIN,
        password=PASSWORD,
    )
    db.close()
    return path


def copy_practice(prepared: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / prepared.name
    for suffix in ("", "-wal", "-shm", ".keys.json"):
        source = Path(f"{prepared}{suffix}")
        if source.exists():
            shutil.copy2(source, Path(f"{target}{suffix}"))
    return target


@pytest.fixture
def practice(prepared_practice: Path, tmp_path: Path) -> Iterator[OpenPractice]:
    """A fresh copy of the prepared practice, unlocked as the physician."""
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.users import get_user

    path = copy_practice(prepared_practice, tmp_path / "db")
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    from ketadesk.core.permissions import Actor, Role

    admin_info = get_user(db, ADMIN)
    admin = Actor(admin_info.user_id, ADMIN, admin_info.full_name, Role.ADMIN, False)
    yield OpenPractice(db, outcome.actor, admin, path)
    db.close()


# --- The practice server (PostgreSQL) ---------------------------------------------------------
# One real dev cluster for the whole run, started the first time a test asks for it. If it
# cannot start, every test that needs it fails with PostgreSQL's reason; none is skipped.


@pytest.fixture(scope="session")
def practice_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from ketadesk.core.errors import UserFacingError
    from ketadesk.storage.server.dev_cluster import remove_dev_cluster, start_dev_cluster

    folder = tmp_path_factory.mktemp("practice-server")
    try:
        cluster = start_dev_cluster(folder)
    except UserFacingError as error:
        remove_dev_cluster(folder)
        pytest.fail(f"The PostgreSQL test server could not start: {error.message}")
    try:
        yield cluster
    finally:
        remove_dev_cluster(folder)


@pytest.fixture
def server_database(practice_server: object) -> Iterator[object]:
    """A new, empty practice database on the test server (its ServerAddress), dropped after."""
    from tests.server_practice import drop_database, new_database

    address = new_database(practice_server)
    try:
        yield address
    finally:
        drop_database(practice_server, address)


@pytest.fixture(scope="session")
def server_template(practice_server: object) -> Iterator[object]:
    """The practice every ``practice_on[server]`` test starts from (its ServerAddress), and
    the ``CopyDropper`` that removes the copies."""
    from tests.both_back_ends import CopyDropper, drop_template, make_template

    template = make_template(practice_server, PASSWORD)
    dropper = CopyDropper(practice_server)
    try:
        yield template, dropper
    finally:
        dropper.finish()
        drop_template(practice_server, template)


@dataclass
class PracticeOn(OpenPractice):
    """An ``OpenPractice`` on one back end; ``url`` and ``ca`` are set on a server (for
    ``--db`` and ``--ca``), ``back_end`` is "file" or "server"."""

    back_end: str = "file"
    url: str = ""
    ca: Path | None = None
    cluster: object = None  # the test server (a DevCluster) on a server
    database: str = ""  # the server's database of this practice

    def name_of(self, user: str) -> str:
        """This back end's user name for ``PHYSICIAN`` or ``ADMIN`` (a server's differ)."""
        names = {PHYSICIAN: self.physician, ADMIN: self.admin}
        return names[user].user_name if user in names else user  # type: ignore[attr-defined]

    @property
    def db_option(self) -> list[str]:
        """The command-line options that name this practice."""
        if self.back_end == "file":
            return ["--db", str(self.path)]
        return ["--db", self.url, "--ca", str(self.ca)]


@pytest.fixture(params=("file", "server"))
def practice_on(
    request: pytest.FixtureRequest, prepared_practice: Path, tmp_path: Path
) -> Iterator[PracticeOn]:
    """A fresh practice on each back end, open as the physician: a copy of the prepared file,
    or a copy of the template practice on the test server."""
    from ketadesk.core.permissions import Actor, Role
    from ketadesk.storage.security.database import PracticeDatabase
    from ketadesk.storage.security.users import get_user

    if request.param == "file":
        path = copy_practice(prepared_practice, tmp_path / "db")
        db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
        admin_info = get_user(db, ADMIN)
        admin = Actor(admin_info.user_id, ADMIN, admin_info.full_name, Role.ADMIN, False)
        yield PracticeOn(db, outcome.actor, admin, path)
        db.close()
        return
    from ketadesk.storage.server.server_practice import ServerPractice
    from tests.both_back_ends import SERVER_ADMIN, SERVER_PHYSICIAN, copy_of

    cluster = request.getfixturevalue("practice_server")
    template, dropper = request.getfixturevalue("server_template")
    address = copy_of(cluster, template)
    try:
        ca = cluster.ca_certificate
        server = ServerPractice.log_in(address, ca, SERVER_PHYSICIAN, PASSWORD)
        admin_info = get_user(server, SERVER_ADMIN)
        admin = Actor(admin_info.user_id, SERVER_ADMIN, admin_info.full_name, Role.ADMIN, False)
        yield PracticeOn(
            server, server.actor, admin, tmp_path, back_end="server", url=address.url, ca=ca,
            cluster=cluster, database=address.database,
        )
        server.close()
    finally:
        dropper.drop_later(address)
