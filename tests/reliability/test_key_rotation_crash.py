"""Key rotation killed at every step and at random moments: the database always opens with the
remaining users' passwords (under the old key or the new one, never neither).

A child process logs in as the physician and removes the admin, which re-encrypts the database
under a new key. It is killed (``os._exit``, no clean-up) just before each file step of the
rotation (and just after the last), or by SIGKILL after a random delay. Trials:
``KETADESK_ROTATION_CRASH_TRIALS`` random kills (default 4) plus every step.

File only: key rotation re-encrypts the file (a server has no database key).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ketadesk.core.errors import UserFacingError
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.storage.security.keyslots import KeySlotFile
from tests.conftest import ADMIN, PASSWORD, PHYSICIAN, copy_practice
from tests.reliability.conftest import ROOT, child_env, record_figure

RANDOM_TRIALS = int(os.environ.get("KETADESK_ROTATION_CRASH_TRIALS", "4"))

# Runs in the child: count the rotation's file steps and die at the chosen one.
CHILD = r"""
import os, sys
from pathlib import Path
crash_at = int(sys.argv[2])  # 0: never; n > 0: just before step n; n < 0: just after step -n
steps = [0]

def boundary(function):
    def wrapped(*args, **kwargs):
        steps[0] += 1
        step = steps[0]
        if crash_at == step:
            os._exit(137)
        result = function(*args, **kwargs)
        if crash_at == -step:
            os._exit(137)
        return result
    return wrapped

from ketadesk.storage.security import database, keyslots
keyslots.KeySlotFile.save = boundary(keyslots.KeySlotFile.save)
database.export_encrypted_copy = boundary(database.export_encrypted_copy)
database.os.replace = boundary(os.replace)
from ketadesk.storage.security.users import remove_user
db, outcome = database.PracticeDatabase.unlock(Path(sys.argv[1]), sys.argv[3], sys.argv[4])
print("READY", flush=True)
remove_user(db, outcome.actor, sys.argv[5])
db.close()
print("STEPS", steps[0], flush=True)
"""


def _child(path: Path, crash_at: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(crash_at), PHYSICIAN, PASSWORD, ADMIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )


def _still_opens(path: Path) -> int:
    """Log in as the physician (must work); returns the key file's generation."""
    db, outcome = PracticeDatabase.unlock(path, PHYSICIAN, PASSWORD)
    try:
        assert outcome.actor.can_manage_users
        with db.session() as session:
            from sqlalchemy import text

            assert session.execute(text("SELECT count(*) FROM users")).scalar_one() == 2
    finally:
        db.close()
    return KeySlotFile.load(path).generation


def _admin_state(path: Path) -> str:
    try:
        PracticeDatabase.unlock(path, ADMIN, PASSWORD)[0].close()
    except UserFacingError:
        return "refused"
    return "opens"


@pytest.fixture(scope="module")
def rotation_steps(prepared_practice: Path, tmp_path_factory: pytest.TempPathFactory) -> int:
    """How many file steps an uninterrupted removal takes (the child reports it)."""
    path = copy_practice(prepared_practice, tmp_path_factory.mktemp("steps"))
    process = _child(path, 0)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    steps = int(out.split("STEPS")[1].split()[0])
    assert KeySlotFile.load(path).generation == 2
    return steps


@pytest.mark.slow
def test_a_rotation_killed_at_every_step_leaves_a_key_that_opens(
    rotation_steps, prepared_practice, tmp_path
) -> None:
    generations: dict[int, int] = {}
    # Just before each step, and just after the last (in between, nothing but memory changes).
    for crash_at in [*range(1, rotation_steps + 1), -rotation_steps]:
        path = copy_practice(prepared_practice, tmp_path / f"step{crash_at}")
        process = _child(path, crash_at)
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 137, (crash_at, err)
        generation = _still_opens(path)
        generations[generation] = generations.get(generation, 0) + 1
        if generation == 2:
            assert _admin_state(path) == "refused", crash_at
    record_figure("rotation_crash_steps", steps=rotation_steps,
                  trials=rotation_steps + 1, opened=rotation_steps + 1,
                  **{f"generation_{g}": n for g, n in generations.items()})


@pytest.mark.slow
def test_a_rotation_killed_at_random_moments_leaves_a_key_that_opens(
    prepared_practice, tmp_path
) -> None:
    rng = random.Random(int(os.environ.get("KETADESK_ROTATION_SEED", "1606")))
    for trial in range(RANDOM_TRIALS):
        path = copy_practice(prepared_practice, tmp_path / f"r{trial}")
        process = _child(path, 0)
        assert process.stdout is not None
        assert process.stdout.readline().startswith("READY")
        time.sleep(rng.uniform(0.0, 0.6))
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        _still_opens(path)
    record_figure("rotation_crash_random", trials=RANDOM_TRIALS, opened=RANDOM_TRIALS)
