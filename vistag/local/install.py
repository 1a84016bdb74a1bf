"""Laying out a distribution: download (checksum-verified), unpack, add modules and plugins.

The result is ``<engines home>/<engine>-<version>/``, written once, then read-only
(world-readable so that an unprivileged engine user can run it).
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

from vistag.errors import LocalEngineError
from vistag.local import artifacts
from vistag.local.java import find_java_home, java_env
from vistag.local.versions import Distribution, Module

logger = logging.getLogger(__name__)


def install_distribution(
    engine: str, dist: Distribution, home: Path, install_dir: Path, extras: tuple[str, ...] = ()
) -> Path:
    """Download and lay out ``dist`` (with the optional plugin sets ``extras``) in
    ``install_dir``; idempotent, and laid out again when the pins changed.

    Args:
        engine: ``opensearch`` or ``elasticsearch``.
        dist: the pinned distribution (archive, modules, plugins).
        home: ``$VISTAG_HOME``; the download cache lives below it.
        install_dir: the folder to create.
        extras: names of ``dist.extras`` to add (e.g. ``("ml",)``).

    Returns:
        ``install_dir``.

    Examples:
        >>> install_distribution("opensearch", DISTRIBUTIONS["opensearch"], home, home / "engines/os")  # doctest: +SKIP
    """
    unknown = sorted(set(extras) - set(dist.extras))
    if unknown:
        raise LocalEngineError(
            f"{engine} has no optional plugin set {', '.join(unknown)} (known: {', '.join(dist.extras) or 'none'})"
        )
    marker = install_dir / ".vistag-installed"
    layout = dist.layout_id(extras)
    if marker.is_file() and marker.read_text() == layout:
        return install_dir
    if marker.is_file():
        logger.info("the pinned plugins of %s changed; laying it out again", install_dir.name)
    java_home = find_java_home(dist.min_java)
    archive = artifacts.fetch(dist.archive, home)
    tmp = install_dir.with_name(install_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    logger.info("unpacking %s", archive.name)
    _unzip(archive, tmp)
    top = next(p for p in tmp.iterdir() if p.is_dir())
    for module in dist.modules:
        _add_module(top, module, dist, home)
    for plugin in (*dist.plugins, *(a for name in extras for a in dist.extras[name])):
        zip_path = artifacts.fetch(plugin, home)
        tool = "opensearch-plugin" if engine == "opensearch" else "elasticsearch-plugin"
        env = {**os.environ, **java_env(engine, java_home)}
        proc = subprocess.run(
            [str(top / "bin" / tool), "install", "--batch", zip_path.resolve().as_uri()],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise LocalEngineError(f"installing plugin {plugin.coordinates} failed:\n{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(install_dir, ignore_errors=True)
    top.rename(install_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    _make_world_readable(install_dir)
    marker.write_text(layout)
    return install_dir


def _add_module(top: Path, module: Module, dist: Distribution, home: Path) -> None:
    target = top / "modules" / module.name
    target.mkdir(parents=True, exist_ok=True)
    for jar in module.jars:
        shutil.copy2(artifacts.fetch(jar, home), target / jar.filename)
    (target / "plugin-descriptor.properties").write_text(
        "\n".join(
            [
                f"description={module.name} (assembled by vistag from Maven Central jars)",
                f"version={dist.version}",
                f"name={module.name}",
                f"classname={module.classname}",
                "java.version=11",
                f"opensearch.version={dist.version}",
                "extended.plugins=",
                "has.native.controller=false",
                "",
            ]
        )
    )
    if module.policy:
        grants = "\n".join(f"  {line}" for line in module.policy)
        (target / "plugin-security.policy").write_text(f"grant {{\n{grants}\n}};\n")


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = dest / info.filename
            if not target.resolve().is_relative_to(dest.resolve()):
                raise LocalEngineError(f"{archive} has an unsafe member {info.filename!r}")
            zf.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)


def _make_world_readable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        extra = stat.S_IROTH | stat.S_IRGRP
        if path.is_dir() or mode & stat.S_IXUSR:
            extra |= stat.S_IXOTH | stat.S_IXGRP
        os.chmod(path, mode | extra)
