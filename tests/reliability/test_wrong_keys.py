"""Wrong and missing keys: each gives one clear message and leaves every file unchanged.

Every file in the practice folder is hashed before and after; the only file a refusal may add is
the failed-attempts sidecar, and only when a password was actually tried against a key slot.
Each case runs through the storage layer and through the CLI (one line on stderr, no traceback).

File only: key slots and the key file are the file's (a server's wrong password:
tests/e2e/test_server_commands.py).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.attempts import attempts_files
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import PASSWORD, PHYSICIAN
from tests.e2e.cli_runner import run_ketadesk
from tests.reliability.conftest import changed_files, folder_hashes

pytestmark = pytest.mark.slow


def _keys(path: Path) -> Path:
    return KeySlotFile.path_for(path)


def _delete_key_file(path: Path, _other: Path) -> str:
    _keys(path).unlink()
    return PASSWORD


def _bad_json(path: Path, _other: Path) -> str:
    text = _keys(path).read_text()
    _keys(path).write_text(text[: len(text) // 2])
    return PASSWORD


def _wrong_format(path: Path, _other: Path) -> str:
    content = json.loads(_keys(path).read_text())
    content["slots"] = "none"
    _keys(path).write_text(json.dumps(content))
    return PASSWORD


def _flipped_wrapped_key(path: Path, _other: Path) -> str:
    content = json.loads(_keys(path).read_text())
    for slot in content["slots"]:
        if slot["user_name"] == PHYSICIAN:
            sealed = bytearray(base64.b64decode(slot["wrapped_key"]))
            sealed[3] ^= 0x01
            slot["wrapped_key"] = base64.b64encode(bytes(sealed)).decode()
    _keys(path).write_text(json.dumps(content))
    return PASSWORD


def _other_databases_key_file(path: Path, other: Path) -> str:
    shutil.copy2(_keys(other), _keys(path))
    return PASSWORD


def _truncated_half(path: Path, _other: Path) -> str:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return PASSWORD


def _truncated_mid_page(path: Path, _other: Path) -> str:
    path.write_bytes(path.read_bytes()[:5000])
    return PASSWORD


def _wrong_password(_path: Path, _other: Path) -> str:
    return "not the right password"


def _empty_file(path: Path, _other: Path) -> str:
    path.write_bytes(b"")
    return PASSWORD


def _database_missing(path: Path, _other: Path) -> str:
    path.unlink()
    return PASSWORD


Case = tuple[Callable[[Path, Path], str], str, bool]
CASES: dict[str, Case] = {
    # name: (make the fault, expected words, may the attempts sidecar be written)
    "wrong password": (_wrong_password, r"Wrong user name or password", True),
    "key file deleted": (_delete_key_file, r"key file .* is missing", False),
    "key file bad JSON": (_bad_json, r"key file .* is damaged", False),
    "key file wrong shape": (_wrong_format, r"key file .* is damaged", False),
    "wrapped key flipped": (_flipped_wrapped_key, r"Wrong user name or password", True),
    "key file of another database": (_other_databases_key_file, r"another database", False),
    # Where half the file ends depends on the schema's size: the cut may fall where the key
    # check fails ("damaged or truncated") or past it, where the page integrity check does.
    "database truncated by half": (_truncated_half, r"damaged", False),
    "database truncated mid-page": (_truncated_mid_page, r"damaged", False),
    "database file missing": (_database_missing, r"no practice database", False),
}
CASES["empty database file"] = (_empty_file, r"empty or cut short", False)
PARAMS = [pytest.param(name, id=name) for name in CASES]


@pytest.fixture(scope="module")
def other_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second practice database with the same user name and password."""
    path = tmp_path_factory.mktemp("other") / "practice.db"
    db, _actor, _recovery = PracticeDatabase.create(
        path, user_name=PHYSICIAN, full_name="Dr. Other Practice", password=PASSWORD
    )
    db.close()
    return path


def _unlock_and_close(path: Path, password: str) -> None:
    db, _outcome = PracticeDatabase.unlock(path, PHYSICIAN, password)
    db.close()


def _allowed_changes(path: Path, may_record_attempt: bool) -> set[str]:
    return {p.name for p in attempts_files(path)} if may_record_attempt else set()


@pytest.mark.parametrize("case", PARAMS)
def test_refused_with_a_clear_message_and_nothing_changed(
    case: str, closed_practice: Path, other_database: Path
) -> None:
    make_fault, expected, may_record_attempt = CASES[case]
    password = make_fault(closed_practice, other_database)
    folder = closed_practice.parent
    before = folder_hashes(folder)
    with pytest.raises(UserFacingError) as caught:
        _unlock_and_close(closed_practice, password)
    message = caught.value.message
    assert re.search(expected, message), message
    assert "\n" not in message and "Traceback" not in message
    assert "sqlcipher" not in message.lower() and "OperationalError" not in message
    assert changed_files(before, folder_hashes(folder)) <= _allowed_changes(
        closed_practice, may_record_attempt
    )
    for name, digest in before.items():  # nothing that existed was touched
        assert folder_hashes(folder).get(name) == digest, name

    # The same through the CLI, from a clean attempts state.
    for leftover in attempts_files(closed_practice):
        leftover.unlink(missing_ok=True)
    before = folder_hashes(folder)
    result = run_ketadesk(
        "--db", str(closed_practice), "user", "list", "--as", PHYSICIAN, "--password-stdin",
        stdin=password + "\n",
    )
    assert result.returncode not in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    ours = result.stderr.splitlines()  # SQLCipher's own log is silenced: only our line
    assert len(ours) == 1, result.stderr
    assert ours[0].startswith("ketadesk: ") and re.search(expected, ours[0]), ours[0]
    assert result.stdout == ""
    assert changed_files(before, folder_hashes(folder)) <= _allowed_changes(
        closed_practice, may_record_attempt
    )


def test_the_untouched_database_still_opens_after_every_refusal(closed_practice: Path) -> None:
    """A control: the same folder and password do open, so the refusals above mean something."""
    before = folder_hashes(closed_practice.parent)
    with pytest.raises(UserFacingError):
        PracticeDatabase.unlock(closed_practice, PHYSICIAN, "not the right password")
    assert changed_files(before, folder_hashes(closed_practice.parent)) <= {
        p.name for p in attempts_files(closed_practice)
    }
    db, outcome = PracticeDatabase.unlock(closed_practice, PHYSICIAN, PASSWORD)
    db.close()
    assert outcome.failed_attempts_since_last_login == 1
    assert outcome.audit.is_intact
