"""Finding a Java for the local engines (both need 17+; OpenSearch 3 and Elasticsearch 9 need 21)."""

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


def find_java_home() -> Path:
    """Return a Java home with Java >= 17: ``$JAVA_HOME`` or the ``java`` on ``PATH``.

    Raises:
        LocalEngineError: no suitable Java was found.
    """
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(os.path.realpath(java)).parent.parent)
    for home in candidates:
        binary = home / "bin" / "java"
        if not binary.is_file():
            continue
        proc = subprocess.run([str(binary), "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
        if match:
            major = int(match.group(1)) if match.group(1) != "1" else int(match.group(2) or 0)
            if major >= MIN_JAVA:
                return home
            logger.warning("%s is Java %d; Java %d+ is needed", binary, major, MIN_JAVA)
    raise LocalEngineError(
        f"no Java {MIN_JAVA}+ found: install a JDK (e.g. `apt-get install openjdk-17-jdk-headless`) or set JAVA_HOME"
    )


def java_env(engine: str, java_home: Path) -> dict[str, str]:
    key = "OPENSEARCH_JAVA_HOME" if engine == "opensearch" else "ES_JAVA_HOME"
    return {key: str(java_home), "JAVA_HOME": str(java_home)}
