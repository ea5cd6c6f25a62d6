"""Optional client certificates per workstation, on a throwaway cluster of their own.

The practice enrols two workstations (``server enrol-workstation``), then requires
certificates (``server require-workstation-certificates``): the enrolled ones log in with
their certificate and the user's own password; a workstation with none, or with one another
CA issued, is refused in words. Revoking the laptop (``server revoke-workstation``: a new
revocation list the server reloads) cuts it off at once, while the desk keeps working; the log-in
dialog takes the workstation's certificate and remembers where it is. Turned off again, any
workstation logs in with a password, but a revoked certificate is still refused.
"""

from __future__ import annotations

import os
import stat

import pytest
from cryptography import x509
from PySide6.QtCore import QSettings, Qt

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.secret_store import MemorySecretStore
from ketadesk.storage.server.certificates import new_practice_ca, write_private
from ketadesk.storage.server.server_engine import WorkstationCertificate
from ketadesk.storage.server.server_practice import ServerPractice
from ketadesk.storage.server.workstation_certificates import (
    enrolled_workstations,
    issue_workstation_certificate,
)
from ketadesk.ui.session.login_dialog import SERVER_SETTINGS, LoginDialog
from tests.conftest import PASSWORD
from tests.reliability._cli_in_process import run_in_process
from tests.server_practice import cluster_of_its_own

pytestmark = pytest.mark.slow

PHYSICIAN = "drenrol"
REVOKED = "has been revoked"
NOT_ENROLLED = "accepts only enrolled workstations, and this one gave no workstation certificate"


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    """A cluster of this module's own (its access rules change), holding one practice."""
    folder = tmp_path_factory.mktemp("enrolling-server")
    with cluster_of_its_own(folder, PHYSICIAN, "Dr Enid Quill", PASSWORD) as (address, ca):
        yield folder, address, ca


def _cli(monkeypatch, capsys, *args: str):
    return run_in_process(monkeypatch, capsys, None, "server", *args, stdin=PASSWORD + "\n")


def _login_args(practice, name: str | None) -> list[str]:
    folder, address, ca = practice
    own = []
    if name is not None:
        own = ["--cert", str(folder / "workstations" / f"{name}.crt"),
               "--key", str(folder / "workstations" / f"{name}.key")]
    return ["login", "--db", address.url, "--ca", str(ca), *own, "--as", PHYSICIAN,
            "--password-stdin"]


def _log_in(practice, workstation: WorkstationCertificate | None) -> None:
    _folder, address, ca = practice
    ServerPractice.log_in(address, ca, PHYSICIAN, PASSWORD, workstation).close()


def _own(practice, name: str) -> WorkstationCertificate:
    folder = practice[0] / "workstations"
    return WorkstationCertificate(folder / f"{name}.crt", folder / f"{name}.key")


def test_enrolled_workstations_connect_and_a_revoked_one_is_refused(
    practice, monkeypatch, capsys, tmp_path
):
    folder, _address, _ca = practice
    for name in ("front-desk", "home-laptop"):
        enrolled = _cli(monkeypatch, capsys, "enrol-workstation", name, "--data", str(folder))
        assert enrolled.code == 0, enrolled.err
        assert f"Enrolled workstation {name}." in enrolled.out
    key = folder / "workstations" / "home-laptop.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    certificate = (folder / "workstations" / "home-laptop.crt").read_bytes()
    issued = x509.load_pem_x509_certificate(certificate)
    assert issued.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "home-laptop"
    again = _cli(monkeypatch, capsys, "enrol-workstation", "front-desk", "--data", str(folder))
    assert again.code != 0 and "already enrolled" in again.err

    # Before the practice requires them, any workstation logs in with a password.
    _log_in(practice, None)
    required = _cli(monkeypatch, capsys, "require-workstation-certificates", "--data", str(folder))
    assert required.code == 0, required.err

    for name in ("front-desk", "home-laptop"):
        allowed = _cli(monkeypatch, capsys, *_login_args(practice, name))
        assert allowed.code == 0, allowed.err
        assert f"as {PHYSICIAN}" in allowed.out
    refused = _cli(monkeypatch, capsys, *_login_args(practice, None))
    assert refused.code != 0 and NOT_ENROLLED in refused.err
    assert "Traceback" not in refused.err and PASSWORD not in refused.err

    stranger_ca = new_practice_ca("Another practice")
    issued_elsewhere, _serial = issue_workstation_certificate(stranger_ca, "front-desk")
    (tmp_path / "stranger.crt").write_bytes(issued_elsewhere.certificate_pem)
    write_private(tmp_path / "stranger.key", issued_elsewhere.key_pem)
    stranger = WorkstationCertificate(tmp_path / "stranger.crt", tmp_path / "stranger.key")
    with pytest.raises(UserFacingError, match="the practice did not issue it"):
        _log_in(practice, stranger)

    revoked = _cli(monkeypatch, capsys, "revoke-workstation", "home-laptop", "--data", str(folder))
    assert revoked.code == 0, revoked.err
    assert "The dev server has read the new revocation list." in revoked.out
    assert enrolled_workstations(folder) == {"front-desk": True, "home-laptop": False}
    cut_off = _cli(monkeypatch, capsys, *_login_args(practice, "home-laptop"))
    assert cut_off.code != 0 and REVOKED in cut_off.err
    _log_in(practice, _own(practice, "front-desk"))
    with pytest.raises(UserFacingError, match=r"certificate .* is missing"):
        _log_in(practice, WorkstationCertificate(tmp_path / "none.crt", tmp_path / "none.key"))

    # Turned off again: a password is enough, but a revoked certificate stays refused.
    off = _cli(monkeypatch, capsys, "require-workstation-certificates", "--data", str(folder),
               "--off")
    assert off.code == 0, off.err
    _log_in(practice, None)
    with pytest.raises(UserFacingError, match=REVOKED):
        _log_in(practice, _own(practice, "home-laptop"))
    back_on = _cli(monkeypatch, capsys, "require-workstation-certificates", "--data", str(folder))
    assert back_on.code == 0, back_on.err


def test_the_log_in_dialog_takes_the_workstations_certificate(
    qtbot, practice, monkeypatch, capsys, tmp_path
):
    folder, address, ca = practice
    if "desk-two" not in enrolled_workstations(folder):
        assert _cli(monkeypatch, capsys, "enrol-workstation", "desk-two", "--data",
                    str(folder)).code == 0
    assert _cli(monkeypatch, capsys, "require-workstation-certificates", "--data",
                str(folder)).code == 0
    QSettings().remove(SERVER_SETTINGS)
    try:
        dialog = LoginDialog(tmp_path / "practice.db", MemorySecretStore(available=True),
                             server_url=address.url)
        qtbot.addWidget(dialog)
        dialog.show()
        dialog.activateWindow()
        qtbot.waitUntil(lambda: dialog.keyring_available is not None, timeout=5_000)
        dialog.ca_edit.setText(str(ca))
        dialog.user_edit.setFocus()
        qtbot.keyClicks(dialog.user_edit, PHYSICIAN)
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=20_000)
        assert NOT_ENROLLED in dialog.error_label.text()
        assert dialog.user_edit.text() == PHYSICIAN
        dialog.grab().save(str(tmp_path / "login-not-enrolled.png"))

        dialog.workstation_edit.setFocus()
        qtbot.keyClicks(dialog.workstation_edit, str(folder / "workstations" / "desk-two.crt"))
        qtbot.keyClicks(dialog.password_edit, PASSWORD)
        with qtbot.waitSignal(dialog.logged_in, timeout=20_000):
            qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
        assert dialog.database.workstation == _own(practice, "desk-two")
        dialog.database.close()
        remembered = QSettings().value(f"{SERVER_SETTINGS}/workstation_certificate")
        assert remembered == str(folder / "workstations" / "desk-two.crt")
    finally:
        QSettings().remove(SERVER_SETTINGS)
