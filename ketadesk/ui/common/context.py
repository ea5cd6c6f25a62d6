"""What every screen needs: the open database, who is logged in, and the op runner."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ketadesk.core.permissions import Actor, Permission
from ketadesk.storage.security.database import PracticeDatabase
from ketadesk.ui.common.ops import OpRunner


class AppContext(QObject):
    """Passed to each widget instead of a global. Views subscribe to ``data_changed``.

    ``data_changed`` carries what changed ("patients", "patient:<id>", "reviews", "protocols",
    "checkins", "users", "settings") so views refresh only what they show.

    Made without a database, a context lets the main window be built while the key is
    derived (``attach`` gives it the database and the user after unlock); until then
    ``db`` and ``actor`` raise.
    """

    data_changed = Signal(str)
    actor_changed = Signal()

    def __init__(
        self,
        db: PracticeDatabase | None = None,
        actor: Actor | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if (db is None) != (actor is None):
            raise ValueError("a context gets the database and the user together")
        self._db = db
        self._actor = actor
        self.ops = OpRunner(self)
        self.ops.data_changed.connect(self.data_changed)

    @property
    def is_attached(self) -> bool:
        """True once the context has its database and user."""
        return self._db is not None

    def attach(self, db: PracticeDatabase, actor: Actor) -> None:
        """Give a context made before unlock its database and user (once)."""
        if self._db is not None:
            raise RuntimeError("this context already has its database")
        self._db = db
        self._actor = actor

    @property
    def db(self) -> PracticeDatabase:
        if self._db is None:
            raise RuntimeError("no database yet: the window is still being built")
        return self._db

    @property
    def actor(self) -> Actor:
        if self._actor is None:
            raise RuntimeError("no user yet: the window is still being built")
        return self._actor

    def set_actor(self, actor: Actor) -> None:
        if actor != self._actor:
            self._actor = actor
            self.actor_changed.emit()

    def can(self, permission: Permission) -> bool:
        return self.actor.can(permission)
