"""Host helpers for local nodes: ports, processes, and the unprivileged user when running as root.

Both engines refuse to run as root; when vistag runs as root a node runs as
``$VISTAG_ENGINE_USER`` (default ``nobody``) through ``setpriv``, and the engines
home is put where that user can reach it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import socket
import stat
from pathlib import Path

from vistag.errors import LocalEngineError

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether ``port`` on 127.0.0.1 can be bound (as a server would: TIME_WAIT does not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def engine_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the node as when we are root, else ``None``."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("VISTAG_ENGINE_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise LocalEngineError(
            f"running as root, the engine must run as another user, but user {name!r} does not exist; "
            "set VISTAG_ENGINE_USER"
        ) from exc


def engines_home(home: Path, run_user: pwd.struct_passwd | None) -> Path:
    """Where nodes live: ``$VISTAG_HOME/engines``, or a world-traversable place when running as root."""
    explicit = os.environ.get("VISTAG_ENGINE_HOME")
    if explicit:
        return Path(explicit)
    default = home / "engines"
    if run_user is None or traversable_by_others(default):
        return default
    fallback = Path("/var/tmp/vistag-engines")
    logger.debug("%s is not reachable by user %s; nodes live in %s", default, run_user.pw_name, fallback)
    return fallback


def traversable_by_others(path: Path) -> bool:
    """Whether every existing parent of ``path`` lets other users through."""
    path = path.resolve()
    for parent in [*reversed(path.parents)]:
        try:
            mode = parent.stat().st_mode
        except FileNotFoundError:
            return True
        if not mode & stat.S_IXOTH:
            return False
    return True


def pid_alive(pid: object) -> bool:
    """Whether ``pid`` is a live process (a zombie child counts as dead)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group of ``pid`` (or to ``pid`` alone when that fails)."""
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def tail(path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log file, each cut at 400 characters."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(line[:400] for line in text[-lines:])
