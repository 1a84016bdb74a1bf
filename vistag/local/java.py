"""Finding a Java for the local engines (OpenSearch 2 and Elasticsearch 8 need 17+; OpenSearch 3 and Elasticsearch 9
need 21+).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

from vistag.errors import LocalEngineError

logger = logging.getLogger(__name__)

MIN_JAVA = 17


def find_java_home(min_major: int = MIN_JAVA) -> Path:
    """A Java home with Java >= ``min_major``.

    Looked for in order: ``$VISTAG_JAVA_HOME``, ``$JAVA_HOME``, the ``java`` on
    ``PATH``, then every JDK under ``/usr/lib/jvm`` (newest first), so a machine
    with JDK 17 as its default and a JDK 21+ beside it runs both engine lines.

    Raises:
        LocalEngineError: none is new enough; the message lists what was found.
    """
    candidates: list[Path] = []
    for variable in ("VISTAG_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(variable):
            candidates.append(Path(os.environ[variable]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted((p for p in jvm.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True)
    seen: list[str] = []
    for home in dict.fromkeys(candidates):
        major = java_major(home)
        if major is None:
            continue
        if major >= min_major:
            return home
        seen.append(f"{home} (Java {major})")
    found = "; found " + ", ".join(seen) if seen else ""
    raise LocalEngineError(
        f"no Java {min_major}+ found{found}: install a JDK {min_major}+ (e.g. `apt-get install "
        f"openjdk-{min_major}-jdk-headless`) or point VISTAG_JAVA_HOME at one"
    )


def java_major(home: Path) -> int | None:
    """The major version of the Java in ``home``, or ``None`` when there is none."""
    binary = home / "bin" / "java"
    if not binary.is_file():
        return None
    proc = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not match:
        return None
    return int(match.group(1)) if match.group(1) != "1" else int(match.group(2) or 0)


def java_env(engine: str, java_home: Path) -> dict[str, str]:
    """The environment variables that point ``engine``'s launcher at ``java_home``."""
    key = "OPENSEARCH_JAVA_HOME" if engine == "opensearch" else "ES_JAVA_HOME"
    return {key: str(java_home), "JAVA_HOME": str(java_home)}
