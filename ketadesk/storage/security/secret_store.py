"""Secrets kept by the operating system's keyring ("remember on this computer").

Fails closed: only a real, secure backend is accepted. No plaintext or base64 fallback and
never ``keyrings.alt``. On a headless Linux box there is usually no backend at all, and
KetaDesk works without one (the option is hidden with a one-line reason).
"""

from __future__ import annotations

import base64
from typing import Protocol

SERVICE = "KetaDesk"

_REFUSED_BACKEND_MODULES = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


class SecretStore(Protocol):
    def availability(self) -> tuple[bool, str]: ...
    def get(self, name: str) -> bytes | None: ...
    def put(self, name: str, secret: bytes) -> None: ...
    def delete(self, name: str) -> None: ...


class KeyringSecretStore:
    """The OS keyring through ``keyring``; refuses insecure or missing backends."""

    def availability(self) -> tuple[bool, str]:
        try:
            import keyring
            from keyring.backends import chainer

            backend = keyring.get_keyring()
        except Exception as error:  # keyring raises many kinds when a backend is broken
            return False, f"The system keyring could not be used ({type(error).__name__})."
        candidates = backend.backends if isinstance(backend, chainer.ChainerBackend) else [backend]
        usable = [
            b
            for b in candidates
            if not type(b).__module__.startswith(_REFUSED_BACKEND_MODULES)
            and getattr(b, "priority", 0) > 0
        ]
        if not usable:
            return False, "No secure system keyring is available on this computer."
        return True, f"Stored in the system keyring ({type(usable[0]).__name__})."

    def get(self, name: str) -> bytes | None:
        if not self.availability()[0]:
            return None
        import keyring

        try:
            value = keyring.get_password(SERVICE, name)
        except Exception:
            return None
        return base64.b64decode(value) if value else None

    def put(self, name: str, secret: bytes) -> None:
        available, reason = self.availability()
        if not available:
            from ketadesk.core.errors import UserFacingError

            raise UserFacingError(reason)
        import keyring

        keyring.set_password(SERVICE, name, base64.b64encode(secret).decode("ascii"))

    def delete(self, name: str) -> None:
        if not self.availability()[0]:
            return
        import keyring

        try:
            keyring.delete_password(SERVICE, name)
        except Exception:
            return


class MemorySecretStore:
    """An in-memory store for tests (behaves like a working keyring)."""

    def __init__(self, available: bool = True) -> None:
        self._available = available
        self.secrets: dict[str, bytes] = {}

    def availability(self) -> tuple[bool, str]:
        if self._available:
            return True, "Stored in the test keyring."
        return False, "No secure system keyring is available on this computer."

    def get(self, name: str) -> bytes | None:
        return self.secrets.get(name) if self._available else None

    def put(self, name: str, secret: bytes) -> None:
        self.secrets[name] = secret

    def delete(self, name: str) -> None:
        self.secrets.pop(name, None)


def device_secret_name(database_id: str, user_name: str) -> str:
    return f"{database_id}/{user_name}"
