"""A private certificate authority for a local secured cluster, made with ``openssl``.

One CA, one node certificate shared by every local node (SAN ``localhost`` and
``127.0.0.1``; server and client use, as transport TLS needs both), and an admin
client certificate (OpenSearch's ``securityadmin`` tool authenticates with it).
Keys are unencrypted PKCS#8 PEM (what both engines read), mode 600.

Examples:
    >>> paths = make_certificates(Path("/tmp/certs"))   # doctest: +SKIP
    >>> paths.ca                                         # doctest: +SKIP
    PosixPath('/tmp/certs/ca.pem')
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vistag.errors import LocalEngineError

NODE_DN = "CN=vistag-node,O=vistag"
ADMIN_DN = "CN=vistag-admin,O=vistag"
DAYS = 825


@dataclass(frozen=True)
class CertificatePaths:
    """The PEM files :func:`make_certificates` writes."""

    ca: Path
    ca_key: Path
    node: Path
    node_key: Path
    admin: Path
    admin_key: Path


def _paths(directory: Path) -> CertificatePaths:
    return CertificatePaths(
        *(directory / n for n in ("ca.pem", "ca.key", "node.pem", "node.key", "admin.pem", "admin.key"))
    )


def make_certificates(directory: Path) -> CertificatePaths:
    """Make (once; kept when present) a CA, a node and an admin certificate in ``directory``.

    Raises:
        LocalEngineError: ``openssl`` is missing or failed (with its message).
    """
    paths = _paths(directory)
    if all(p.is_file() for p in (paths.ca, paths.node, paths.node_key, paths.admin, paths.admin_key)):
        return paths
    if not shutil.which("openssl"):
        raise LocalEngineError("`openssl` is needed to make the certificates of a secured local cluster")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)

    def run(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], cwd=directory, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LocalEngineError(f"openssl {args[0]} failed: {proc.stderr.strip()}")

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        str(DAYS),
        "-subj",
        "/O=vistag/CN=vistag local CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    for name, dn, extensions in (
        (
            "node",
            NODE_DN,
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n",
        ),
        ("admin", ADMIN_DN, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n"),
    ):
        subject = "/" + "/".join(reversed(dn.split(",")))  # RFC 2253 order -> openssl's
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        (directory / f"{name}.ext").write_text(extensions)
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            str(DAYS),
            "-extfile",
            f"{name}.ext",
        )
        (directory / f"{name}.csr").unlink()
        (directory / f"{name}.ext").unlink()
    for key in (paths.ca_key, paths.node_key, paths.admin_key):
        os.chmod(key, 0o600)
    return paths
