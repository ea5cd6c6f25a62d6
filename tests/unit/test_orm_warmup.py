"""What the log-in prepares while argon2id derives the key: nothing of it waits for the key."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_warm_up_loads_the_mappers_the_sqlite_dialect_and_the_knowledge_base() -> None:
    script = textwrap.dedent("""
        import sys, threading
        from ketadesk.core import knowledge_base
        from ketadesk.storage.security.orm_warmup import start_orm_warm_up

        assert "sqlalchemy.dialects.sqlite" not in sys.modules
        start_orm_warm_up().join()
        for thread in threading.enumerate():
            if thread.name == "ketadesk-kb-warm-up":
                thread.join()
        from ketadesk.models.patients import Patient
        print(
            "sqlalchemy.dialects.sqlite" in sys.modules,
            knowledge_base._shipped_knowledge_base.cache_info().currsize,
            Patient.__mapper__.configured,
        )
        # The first real use takes the loaded one, not a second load.
        assert knowledge_base.load_knowledge_base() is knowledge_base.load_knowledge_base()
        print(knowledge_base._shipped_knowledge_base.cache_info().misses)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.split() == ["True", "1", "True", "1"]
