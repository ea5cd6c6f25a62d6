"""``server certificates``: the practice CA and a server certificate for a production server,
checked the way a workstation checks the server (verify-full: the CA and the host name)."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tests.reliability._cli_in_process import run_in_process


def _verify(folder, name) -> None:
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((folder / "server.crt").read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    verifier.verify(server, [])


def test_certificates_are_made_once_renewed_under_the_same_ca_and_keys_kept_private(
    tmp_path, monkeypatch, capsys
) -> None:
    import ipaddress

    out = tmp_path / "certs"
    made = run_in_process(
        monkeypatch, capsys, None, "server", "certificates", "--out", str(out),
        "--host", "db.practice.lan", "--host", "192.168.1.20",
    )
    assert made.code == 0, made.err
    assert "Made the practice CA" in made.out
    assert sorted(p.name for p in out.iterdir()) == ["ca.crt", "ca.key", "server.crt", "server.key"]
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    _verify(out, DNSName("db.practice.lan"))
    _verify(out, IPAddress(ipaddress.ip_address("192.168.1.20")))
    with pytest.raises(VerificationError):
        _verify(out, DNSName("elsewhere.example"))

    ca_before = (out / "ca.crt").read_bytes()
    server_before = (out / "server.crt").read_bytes()
    renewed = run_in_process(
        monkeypatch, capsys, None, "server", "certificates", "--out", str(out),
        "--host", "db2.practice.lan",
    )
    assert renewed.code == 0, renewed.err
    assert f"Kept the practice CA in {out}." in renewed.out
    assert (out / "ca.crt").read_bytes() == ca_before
    assert (out / "server.crt").read_bytes() != server_before
    _verify(out, DNSName("db2.practice.lan"))

    (out / "ca.key").unlink()
    half = run_in_process(
        monkeypatch, capsys, None, "server", "certificates", "--out", str(out),
        "--host", "db.practice.lan",
    )
    assert half.code == 1
    assert "holds only one of ca.crt and ca.key" in half.err
