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
    """

    data_changed = Signal(str)
    actor_changed = Signal()

    def __init__(self, db: PracticeDatabase, actor: Actor, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.db = db
        self._actor = actor
        self.ops = OpRunner(self)
        self.ops.data_changed.connect(self.data_changed)

    @property
    def actor(self) -> Actor:
        return self._actor

    def set_actor(self, actor: Actor) -> None:
        if actor != self._actor:
            self._actor = actor
            self.actor_changed.emit()

    def can(self, permission: Permission) -> bool:
        return self._actor.can(permission)
