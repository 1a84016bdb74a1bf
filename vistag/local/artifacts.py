"""Download Maven artifacts into vistag's own local repository and verify their checksums.

``mvn dependency:get`` does the download when Maven is installed (with strict
checksums, so a corrupt download fails there). Without Maven the same repository
path is fetched over plain HTTPS from ``$VISTAG_MAVEN_REPO`` (the base URL of
Maven Central or a mirror of it). Either way the file's SHA-1 is checked against
the ``.sha1`` file Maven publishes next to it, or, for the artifacts the repository
has no ``.sha1`` for, against the SHA-256 pinned in :mod:`vistag.local.versions`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
from pathlib import Path

import requests

from vistag.errors import LocalEngineError
from vistag.local.versions import Artifact

logger = logging.getLogger(__name__)


def local_repository(home: Path) -> Path:
    """Return the Maven repository folder vistag uses below ``home``."""
    return home / "m2"


def fetch(artifact: Artifact, home: Path) -> Path:
    """Return the path of ``artifact`` in vistag's Maven repository, downloading it if needed.

    Args:
        artifact: what to fetch.
        home: ``$VISTAG_HOME``.

    Raises:
        LocalEngineError: the download failed or the checksum does not match.
    """
    repo = local_repository(home)
    path = repo / artifact.repo_path
    if path.is_file() and _checksum_ok(path, artifact.sha256):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("mvn"):
        _fetch_with_maven(artifact, repo)
    else:
        _fetch_with_https(artifact, path)
    if not path.is_file():
        raise LocalEngineError(f"download of {artifact.coordinates} did not produce {path}")
    if not _checksum_ok(path, artifact.sha256):
        path.unlink(missing_ok=True)
        raise LocalEngineError(
            f"checksum mismatch for {artifact.coordinates}; the corrupt file was removed, run the command again"
        )
    return path


def _fetch_with_maven(artifact: Artifact, repo: Path) -> None:
    cmd = [
        "mvn",
        "-B",
        "-q",
        # -C: fail on a .sha1 mismatch; an artifact pinned by SHA-256 has no .sha1 to check (-C would fail),
        # its pin is verified afterwards instead.
        *(() if artifact.sha256 else ("-C",)),
        "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get",
        f"-Dartifact={artifact.coordinates}",
        "-Dtransitive=false",
        f"-Dmaven.repo.local={repo}",
    ]
    logger.info("downloading %s with mvn", artifact.coordinates)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-15:]
        raise LocalEngineError(f"mvn could not download {artifact.coordinates}:\n" + "\n".join(tail))


def _fetch_with_https(artifact: Artifact, path: Path) -> None:
    base = os.environ.get("VISTAG_MAVEN_REPO", "").rstrip("/")
    if not base:
        raise LocalEngineError(
            f"cannot download {artifact.coordinates}: Maven (mvn) is not installed and VISTAG_MAVEN_REPO "
            "(the base URL of Maven Central or a mirror) is not set"
        )
    url = f"{base}/{artifact.repo_path}"
    logger.info("downloading %s", url)
    try:
        sha = None
        if not artifact.sha256:
            sha = requests.get(url + ".sha1", timeout=60)
            sha.raise_for_status()
        tmp = path.with_suffix(path.suffix + ".part")
        with requests.get(url, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            with open(tmp, "wb") as out:
                for chunk in resp.iter_content(1 << 20):
                    out.write(chunk)
    except requests.RequestException as exc:
        raise LocalEngineError(f"download of {url} failed: {exc}") from exc
    if sha is not None:
        path.with_name(path.name + ".sha1").write_text(sha.text.strip().split()[0])
    tmp.replace(path)


def _checksum_ok(path: Path, sha256: str = "") -> bool:
    """Check ``path`` against its pinned SHA-256, else against ``path.sha1`` (a missing
    checksum file counts as a mismatch).
    """
    if sha256:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest() == sha256.lower()
    sha_file = path.with_name(path.name + ".sha1")
    if not sha_file.is_file():
        return False
    expected = sha_file.read_text().strip().split()[0].lower() if sha_file.read_text().strip() else ""
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == expected
