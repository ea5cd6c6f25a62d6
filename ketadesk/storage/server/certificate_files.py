"""The practice's certificate files for a production server (``server certificates``).

``server dev`` makes its own; a real server gets them here, once: the practice CA (``ca.crt``,
installed on every workstation; ``ca.key``, kept offline, 0600) and the server's certificate
and key for its host names (``server.crt``, ``server.key``, copied to PostgreSQL's data
folder). Run again with the same folder, it keeps the CA and issues a new server certificate
(renewal, or a new host name), so no workstation needs a new ``ca.crt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from ketadesk.core.errors import UserFacingError
from ketadesk.core.private_files import make_private_folder
from ketadesk.storage.server.certificates import (
    IssuedCertificate,
    issue_server_certificate,
    new_practice_ca,
    write_private,
)


@dataclass(frozen=True)
class CertificateFiles:
    folder: Path
    is_new_ca: bool
    host_names: tuple[str, ...]
    expires_on: str

    @property
    def ca_certificate(self) -> Path:
        return self.folder / "ca.crt"


def make_server_certificates(
    folder: Path, host_names: list[str], practice_name: str
) -> CertificateFiles:
    """Write (or renew) the practice CA and a server certificate for ``host_names``."""
    names = [h.strip() for h in host_names if h.strip()]
    if not names:
        raise UserFacingError(
            "Name the server as workstations will reach it: --host server.practice.lan (and "
            "--host with its IP address if they use that)."
        )
    folder = make_private_folder(Path(folder).expanduser().resolve())
    ca_certificate, ca_key = folder / "ca.crt", folder / "ca.key"
    if ca_certificate.exists() != ca_key.exists():
        raise UserFacingError(
            f"{folder} holds only one of ca.crt and ca.key; put the other back (or use a new "
            "folder). Nothing was written."
        )
    is_new_ca = not ca_certificate.exists()
    if is_new_ca:
        ca = new_practice_ca(practice_name)
        write_private(ca_key, ca.key_pem)
        ca_certificate.write_bytes(ca.certificate_pem)
    else:
        ca = IssuedCertificate(ca_certificate.read_bytes(), ca_key.read_bytes())
    server = issue_server_certificate(ca, names)
    write_private(folder / "server.key", server.key_pem)
    (folder / "server.crt").write_bytes(server.certificate_pem)
    expires = x509.load_pem_x509_certificate(server.certificate_pem).not_valid_after_utc
    return CertificateFiles(folder, is_new_ca, tuple(names), expires.date().isoformat())
