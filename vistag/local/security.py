"""A secured local node or cluster for development and tests, with the roles of :mod:`vistag.engine.roles`.

:func:`secure_options` gives a local node started with ``vistag engine start
--secure`` TLS on HTTP and transport from a private CA, and internal users
``vistag-admin``, ``vistag-indexer`` and ``vistag-storefront`` with generated
passwords kept in a 600 file, holding exactly the roles a cluster admin installs
from ``vistag security roles``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from vistag.engine.roles import INDEXER, STOREFRONT, USERS, role_definitions
from vistag.errors import ConfigError, LocalEngineError
from vistag.local.certs import ADMIN_DN, NODE_DN, make_certificates
from vistag.local.java import find_java_home, java_env

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------- local secured node
@dataclass(frozen=True)
class SecureSetup:
    """What a secured local node needs: where its certificates and passwords are, and the node options."""

    directory: Path
    ca_cert: Path
    credentials: dict[str, str]

    @property
    def admin(self) -> tuple[str, str]:
        """``(user, password)`` of ``vistag-admin``."""
        return "vistag-admin", self.credentials["vistag-admin"]


_PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 24) -> str:
    """A random password of letters and digits (about 143 bits at the default length).

    Letters and digits only, so it can be typed after ``--password``, into a URL or a shell
    unquoted: a password that starts with ``-`` (as ``secrets.token_urlsafe`` gives one time in
    64) makes argparse read it as an option.

    Examples:
        >>> len(generate_password())
        24
    """
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(length))


def load_or_create_setup(directory: Path) -> SecureSetup:
    """Certificates and generated passwords in ``directory`` (made once, then reused; files mode 600)."""
    certs = make_certificates(directory)
    creds_file = directory / "credentials.json"
    try:
        credentials = json.loads(creds_file.read_text())
    except (OSError, ValueError):
        credentials = {user: generate_password() for user in USERS}
        creds_file.write_text(json.dumps(credentials, indent=2))
        os.chmod(creds_file, 0o600)
    return SecureSetup(directory=directory, ca_cert=certs.ca, credentials=credentials)


def _bcrypt(password: str, prefix: str = "$2y$") -> str:
    try:
        import bcrypt
    except ImportError as exc:
        raise ConfigError(f"a secured local node needs bcrypt: pip install 'vistag[security]' ({exc})") from None
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    return prefix + hashed[4:]


def _yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML of dicts, lists and scalars (strings double-quoted, JSON-escaped).

    Not flow-style JSON: Elasticsearch's roles file is read one top-level key per block.
    """
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return f"{pad}{{}}\n"
        out = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append(f"{pad}{key}:\n{_yaml(item, indent + 2)}")
            else:
                out.append(f"{pad}{key}: {_yaml(item).strip()}\n")
        return "".join(out)
    if isinstance(value, list):
        if not value:
            return f"{pad}[]\n"
        out = []
        for item in value:
            text = _yaml(item, indent + 2)
            out.append(f"{pad}- {text.lstrip()}" if isinstance(item, dict) else f"{pad}- {text.strip()}\n")
        return "".join(out)
    return f"{pad}{json.dumps(value)}\n"


def secure_options(engine: str, setup: SecureSetup, index: str = "products") -> dict[str, Any]:
    """Keyword arguments of :class:`~vistag.local.node.LocalNode` (or ``LocalCluster``) for a
    secured node: TLS settings, a ``configure`` hook that lays out certificates, users and the
    roles of :func:`role_definitions`, the ``https`` scheme, and the admin's credentials.
    """
    options = {
        "settings": _settings(engine),
        "configure": _configure(engine, setup, index),
        "scheme": "https",
        "auth": setup.admin,
        "ca_cert": str(setup.ca_cert),
    }
    if engine == "opensearch":
        options["after_launch"] = _load_security_config(setup)
    return options


def _load_security_config(
    setup: SecureSetup, timeout: float = 180.0
) -> Callable[[Any, subprocess.Popen[bytes], str], None]:
    """Push the node's ``opensearch-security/`` files into the security index with ``securityadmin``
    (admin certificate), at every start: users and roles always match what vistag wrote.
    """

    def load(node: Any, proc: subprocess.Popen[bytes], url: str) -> None:
        tool = node.install_dir / "plugins" / "opensearch-security" / "tools" / "securityadmin.sh"
        env = {**os.environ, **java_env("opensearch", find_java_home(node.dist.min_java))}
        cmd = [
            "bash",
            str(tool),
            "-cd",
            str(node.run_dir / "config" / "opensearch-security"),
            "-icl",
            "-nhnv",
            "-h",
            "127.0.0.1",
            "-p",
            str(urlparse(url).port),
            "-cacert",
            str(setup.directory / "ca.pem"),
            "-cert",
            str(setup.directory / "admin.pem"),
            "-key",
            str(setup.directory / "admin.key"),
        ]
        deadline = time.monotonic() + timeout
        while proc.poll() is None:  # an exited node is reported, with its log, by the health wait
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode == 0:
                logger.info("security configuration loaded into %s", url)
                return
            if time.monotonic() > deadline:
                raise LocalEngineError(
                    f"securityadmin could not load the security configuration into {url}:\n"
                    + "\n".join(done.stdout.splitlines()[-15:])
                )
            time.sleep(2.0)

    return load


def _settings(engine: str) -> dict[str, str]:
    if engine == "opensearch":
        tls: dict[str, str] = {}
        for layer in ("transport", "http"):
            tls |= {
                f"plugins.security.ssl.{layer}.pemcert_filepath": "certs/node.pem",
                f"plugins.security.ssl.{layer}.pemkey_filepath": "certs/node.key",
                f"plugins.security.ssl.{layer}.pemtrustedcas_filepath": "certs/ca.pem",
            }
        return {**tls, "plugins.security.ssl.http.enabled": "true", "plugins.security.system_indices.enabled": "true"}
    settings = {
        "xpack.security.enabled": "true",
        "xpack.security.http.ssl.enabled": "true",
        "xpack.security.transport.ssl.enabled": "true",
        "xpack.security.transport.ssl.verification_mode": "certificate",
    }
    for layer in ("http", "transport"):
        settings |= {
            f"xpack.security.{layer}.ssl.key": "certs/node.key",
            f"xpack.security.{layer}.ssl.certificate": "certs/node.pem",
            f"xpack.security.{layer}.ssl.certificate_authorities": "certs/ca.pem",
        }
    return settings


def _configure(engine: str, setup: SecureSetup, index: str) -> Callable[[Path, dict], None]:
    roles = role_definitions(engine, index)

    def configure(config_dir: Path, env: dict) -> None:
        certs = config_dir / "certs"
        certs.mkdir(exist_ok=True)
        for name in ("ca.pem", "node.pem", "node.key"):
            (certs / name).write_bytes((setup.directory / name).read_bytes())
            os.chmod(certs / name, 0o600)
        if engine == "opensearch":
            _configure_opensearch(config_dir, setup, roles)
        else:
            _configure_elasticsearch(config_dir, setup, roles)

    return configure


def _configure_opensearch(config_dir: Path, setup: SecureSetup, roles: dict[str, dict]) -> None:
    with open(config_dir / "opensearch.yml", "a", encoding="utf-8") as fh:  # list settings: not as -E flags
        fh.write(
            f"\nplugins.security.nodes_dn: [{json.dumps(NODE_DN)}]\n"
            f"plugins.security.authcz.admin_dn: [{json.dumps(ADMIN_DN)}]\n"
            'plugins.security.restapi.roles_enabled: ["all_access"]\n'
        )
    sec = config_dir / "opensearch-security"
    users = {"_meta": {"type": "internalusers", "config_version": 2}}
    for user in USERS:
        users[user] = {
            "hash": _bcrypt(setup.credentials[user]),
            "reserved": False,
            "description": f"vistag local {user.split('-')[1]}",
        }
    mapping = {
        "_meta": {"type": "rolesmapping", "config_version": 2},
        "all_access": {"reserved": False, "users": ["vistag-admin"]},
        INDEXER: {"users": ["vistag-indexer"]},
        STOREFRONT: {"users": ["vistag-storefront"]},
    }
    role_file = {
        "_meta": {"type": "roles", "config_version": 2},
        **{name: {"reserved": False, **body} for name, body in roles.items()},
    }
    (sec / "internal_users.yml").write_text(_yaml(users))
    (sec / "roles_mapping.yml").write_text(_yaml(mapping))
    (sec / "roles.yml").write_text(_yaml(role_file))


def _configure_elasticsearch(config_dir: Path, setup: SecureSetup, roles: dict[str, dict]) -> None:
    # The file realm: no .security index needed (the integ-test zip cannot create one).
    (config_dir / "roles.yml").write_text(
        _yaml({name: {k: v for k, v in body.items() if k != "description"} for name, body in roles.items()})
    )
    (config_dir / "users").write_text("".join(f"{user}:{_bcrypt(setup.credentials[user], '$2a$')}\n" for user in USERS))
    members: dict[str, list[str]] = {
        "superuser": ["vistag-admin"],
        INDEXER: ["vistag-indexer"],
        STOREFRONT: ["vistag-storefront"],
    }
    (config_dir / "users_roles").write_text("".join(f"{role}:{','.join(users)}\n" for role, users in members.items()))
