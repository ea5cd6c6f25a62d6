"""Optional client certificates per workstation, issued and revoked by the practice CA.

A practice that turns them on accepts a connection only from a workstation holding a
certificate its CA issued (``clientcert=verify-ca`` in pg_hba.conf) and not revoked (the
server reads the CA's revocation list, ``ssl_crl_file``), on top of the user's own password: a
lost laptop is cut off by revoking its certificate, whoever knows the password.

The CA folder (``ca.crt``, ``ca.key``: for the dev cluster the folder given to ``server dev``)
keeps ``workstations.json`` (each workstation's serial number, when it was issued and revoked;
no key) and ``workstations.crl``, the signed list of revoked serials, rewritten at each change.
A workstation's key is written once, 0600, into the folder named for it, and not kept here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ketadesk.core.errors import UserFacingError
from ketadesk.core.private_files import make_private_folder
from ketadesk.storage.server.certificates import CA_DAYS, IssuedCertificate, write_private

WORKSTATION_DAYS = 825
REGISTER = "workstations.json"
REVOCATION_LIST = "workstations.crl"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


@dataclass(frozen=True)
class EnrolledWorkstation:
    name: str
    serial: int
    certificate: Path
    key: Path


def check_workstation_name(name: str) -> None:
    if not _NAME.match(name):
        raise UserFacingError(
            f"{name[:80]!r} cannot name a workstation: use 1 to 63 letters, digits, dots, "
            "dashes or underscores, starting with a letter or digit (as in front-desk-2)."
        )


def _load_ca(folder: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate_file, key_file = folder / "ca.crt", folder / "ca.key"
    if not certificate_file.is_file() or not key_file.is_file():
        raise UserFacingError(
            f"{folder} does not hold the practice CA (ca.crt and ca.key); give the folder "
            "'server dev' made, or the one the practice keeps its CA in."
        )
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(certificate_file.read_bytes()), key


def _register(folder: Path) -> dict[str, dict[str, object]]:
    path = folder / REGISTER
    if not path.exists():
        return {}
    loaded: dict[str, dict[str, object]] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _save_register(folder: Path, register: dict[str, dict[str, object]]) -> None:
    write_private(folder / REGISTER, json.dumps(register, indent=2).encode())


def issue_workstation_certificate(
    ca: IssuedCertificate, name: str, now: datetime | None = None
) -> tuple[IssuedCertificate, int]:
    """A client certificate for workstation ``name`` signed by ``ca``, and its serial number."""
    now = now or datetime.now(UTC)
    ca_certificate = x509.load_pem_x509_certificate(ca.certificate_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "KetaDesk workstation"),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=WORKSTATION_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # what libpq reads
        serialization.NoEncryption(),
    )
    return IssuedCertificate(certificate.public_bytes(serialization.Encoding.PEM), key_pem), serial


def write_revocation_list(folder: Path, now: datetime | None = None) -> Path:
    """(Re)write ``workstations.crl``: every revoked serial, signed by the CA. It stays valid as
    long as the CA, so a server never refuses everyone because the list went stale."""
    now = now or datetime.now(UTC)
    ca_certificate, ca_key = _load_ca(folder)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_certificate.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=CA_DAYS))
    )
    for entry in _register(folder).values():
        if entry.get("revoked_at"):
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(str(entry["serial"])))
                .revocation_date(datetime.fromisoformat(str(entry["revoked_at"])))
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
    crl = builder.sign(ca_key, hashes.SHA256())
    path = folder / REVOCATION_LIST
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    return path


def enrol_workstation(folder: Path, name: str, out: Path) -> EnrolledWorkstation:
    """Issue workstation ``name`` its certificate and key (written into ``out``, the key 0600)."""
    check_workstation_name(name)
    folder = Path(folder).expanduser().resolve()
    _load_ca(folder)
    register = _register(folder)
    if name in register and not register[name].get("revoked_at"):
        raise UserFacingError(
            f"A workstation named {name} is already enrolled; revoke it first "
            "('server revoke-workstation') or choose another name. Nothing was changed."
        )
    ca = IssuedCertificate(
        (folder / "ca.crt").read_bytes(), (folder / "ca.key").read_bytes()
    )
    issued, serial = issue_workstation_certificate(ca, name)
    out = make_private_folder(Path(out).expanduser().resolve())
    certificate_path, key_path = out / f"{name}.crt", out / f"{name}.key"
    certificate_path.write_bytes(issued.certificate_pem)
    write_private(key_path, issued.key_pem)
    register[name] = {
        "serial": str(serial),
        "issued_at": datetime.now(UTC).isoformat(),
        "revoked_at": None,
    }
    _save_register(folder, register)
    write_revocation_list(folder)
    return EnrolledWorkstation(name, serial, certificate_path, key_path)


def revoke_workstation(folder: Path, name: str) -> Path:
    """Revoke workstation ``name``'s certificate; returns the rewritten revocation list."""
    folder = Path(folder).expanduser().resolve()
    _load_ca(folder)
    register = _register(folder)
    entry = register.get(name)
    if entry is None:
        known = ", ".join(sorted(register)) or "none yet"
        raise UserFacingError(
            f"No workstation named {name[:80]} was enrolled here (enrolled: {known})."
        )
    if entry.get("revoked_at"):
        raise UserFacingError(f"The workstation {name} was already revoked on "
                              f"{str(entry['revoked_at'])[:10]}; nothing was changed.")
    entry["revoked_at"] = datetime.now(UTC).isoformat()
    _save_register(folder, register)
    return write_revocation_list(folder)


def enrolled_workstations(folder: Path) -> dict[str, bool]:
    """Each enrolled workstation's name and whether its certificate is still valid."""
    return {
        name: not entry.get("revoked_at")
        for name, entry in sorted(_register(Path(folder).expanduser().resolve()).items())
    }
