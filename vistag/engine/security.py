"""Least-privilege roles for vistag's two jobs, and a secured local node or cluster.

Two roles, for each engine, in the shape its security API and files take:

* ``vistag_indexer``: what ``vistag index``/``sync``/``reindex`` need: create and
  write the ``<index>*`` indices, manage their aliases, templates, stored search
  templates and pipelines; nothing on any other index.
* ``vistag_storefront``: what a storefront that calls the engine directly needs:
  search, ``_msearch``, ``_mget`` and stored search templates on the alias only;
  no writes, no deletes, no other index.

:func:`role_definitions` is the one place these are written down: ``vistag
security roles`` prints them for a cluster admin, and :func:`secure_options`
installs the very same ones in a local node started with ``vistag engine start
--secure`` (TLS on HTTP and transport from a private CA, internal users
``vistag-admin``, ``vistag-indexer`` and ``vistag-storefront`` with generated
passwords kept in a 600 file).

Example:
    >>> sorted(role_definitions("opensearch", "products"))
    ['vistag_indexer', 'vistag_storefront']
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from vistag.engine.certs import ADMIN_DN, NODE_DN, make_certificates
from vistag.engine.java import find_java_home, java_env
from vistag.errors import ConfigError, LocalEngineError

logger = logging.getLogger(__name__)

INDEXER, STOREFRONT = "vistag_indexer", "vistag_storefront"
USERS = {"vistag-admin": None, "vistag-indexer": INDEXER, "vistag-storefront": STOREFRONT}


def role_definitions(engine: str, index: str = "products", alias: str | None = None) -> dict[str, dict[str, Any]]:
    """The indexer and storefront roles for ``engine``, as its role API takes them.

    Args:
        engine: ``opensearch`` (security plugin: ``PUT _plugins/_security/api/roles/<name>``)
            or ``elasticsearch`` (``PUT _security/role/<name>``, or ``config/roles.yml``).
        index: the index name (or prefix) vistag writes; the indexer gets ``<index>*``.
        alias: the name the storefront reads (default ``index``).

    Returns:
        ``{role name: body}``.
    """
    pattern, alias = f"{index}*", alias or index
    if engine == "opensearch":
        return {
            INDEXER: {
                "description": f"vistag indexer: write and manage {pattern} (templates, aliases, pipelines)",
                "cluster_permissions": [
                    "cluster_manage_index_templates", "cluster_manage_pipelines",
                    "cluster:admin/search/pipeline/put", "cluster:admin/search/pipeline/get",
                    "cluster:admin/script/put", "cluster:admin/script/get",
                    "cluster:monitor/health", "cluster:monitor/main", "cluster:monitor/nodes/info",
                    "indices:data/write/bulk", "indices:data/read/msearch", "indices:data/read/mget",
                    "indices:data/read/scroll", "indices:data/read/scroll/clear",
                ],
                "index_permissions": [{"index_patterns": [pattern],
                                       "allowed_actions": ["crud", "create_index", "manage", "manage_aliases"]}],
            },
            STOREFRONT: {
                "description": f"vistag storefront: search and run search templates on {alias} only",
                "cluster_permissions": [
                    # GET / and _nodes/plugins: version and modules, which vistag reads to shape its queries
                    "cluster:monitor/main", "cluster:monitor/nodes/info",
                    "indices:data/read/msearch", "indices:data/read/msearch/template", "indices:data/read/mget",
                    "indices:data/read/scroll", "indices:data/read/scroll/clear",
                ],
                # read, plus the index's existence and mapping (vistag's Searcher reads the vector dimension).
                "index_permissions": [{"index_patterns": [alias],
                                       "allowed_actions": ["read", "indices:admin/get", "indices:admin/mappings/get"]}],
            },
        }
    if engine == "elasticsearch":
        return {
            INDEXER: {
                "description": f"vistag indexer: write and manage {pattern} (templates, aliases, pipelines)",
                "cluster": ["manage_index_templates", "manage_ingest_pipelines", "monitor"],
                "indices": [{"names": [pattern],
                             "privileges": ["create_index", "write", "delete", "read", "view_index_metadata", "manage"]}],
            },
            STOREFRONT: {
                "description": f"vistag storefront: search and run search templates on {alias} only",
                # _nodes/plugins: version and modules, which vistag reads to shape its queries (GET / answers
                # 405 on the integ-test zips); an action pattern, narrower than the `monitor` privilege.
                "cluster": ["cluster:monitor/nodes/info"],
                "indices": [{"names": [alias], "privileges": ["read", "view_index_metadata"]}],
            },
        }
    raise ConfigError(f"unknown engine {engine!r}: elasticsearch or opensearch")


def console_text(engine: str, index: str = "products", alias: str | None = None) -> str:
    """The roles as console requests a cluster admin can paste (Dev Tools in Dashboards/Kibana, or curl)."""
    path = "_plugins/_security/api/roles" if engine == "opensearch" else "_security/role"
    parts = []
    for name, body in role_definitions(engine, index, alias).items():
        if engine == "opensearch":
            body = {k: v for k, v in body.items() if k != "description"}
        else:
            body = {k: v for k, v in body.items() if k != "description"} | {"metadata": {"description": body["description"]}}
        parts.append(f"PUT {path}/{name}\n{json.dumps(body, indent=2)}")
    mapping = ("\n\n# then map users or backend roles to them, e.g.\n"
               f"PUT _plugins/_security/api/rolesmapping/{INDEXER}\n" + json.dumps({"users": ["vistag-indexer"]}, indent=2)
               if engine == "opensearch" else
               "\n\n# then give users the roles (native realm: PUT _security/user/<name> {\"roles\": [...]}; "
               "file realm: config/users_roles)")
    return "\n\n".join(parts) + mapping + "\n"


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

    Example:
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
    """Keyword arguments of :class:`~vistag.engine.local.LocalNode` (or ``LocalCluster``) for a
    secured node: TLS settings, a ``configure`` hook that lays out certificates, users and the
    roles of :func:`role_definitions`, the ``https`` scheme, and the admin's credentials."""
    options = {"settings": _settings(engine), "configure": _configure(engine, setup, index), "scheme": "https",
               "auth": setup.admin, "ca_cert": str(setup.ca_cert)}
    if engine == "opensearch":
        options["after_launch"] = _load_security_config(setup)
    return options


def _load_security_config(setup: SecureSetup, timeout: float = 180.0) -> Callable:
    """Push the node's ``opensearch-security/`` files into the security index with ``securityadmin``
    (admin certificate), at every start: users and roles always match what vistag wrote."""

    def load(node, proc: subprocess.Popen, url: str) -> None:
        tool = node.install_dir / "plugins" / "opensearch-security" / "tools" / "securityadmin.sh"
        env = {**os.environ, **java_env("opensearch", find_java_home(node.dist.min_java))}
        cmd = ["bash", str(tool), "-cd", str(node.run_dir / "config" / "opensearch-security"), "-icl", "-nhnv",
               "-h", "127.0.0.1", "-p", str(urlparse(url).port), "-cacert", str(setup.directory / "ca.pem"),
               "-cert", str(setup.directory / "admin.pem"), "-key", str(setup.directory / "admin.key")]
        deadline = time.monotonic() + timeout
        while proc.poll() is None:  # an exited node is reported, with its log, by the health wait
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
            if done.returncode == 0:
                logger.info("security configuration loaded into %s", url)
                return
            if time.monotonic() > deadline:
                raise LocalEngineError(f"securityadmin could not load the security configuration into {url}:\n"
                                       + "\n".join(done.stdout.splitlines()[-15:]))
            time.sleep(2.0)

    return load


def _settings(engine: str) -> dict[str, str]:
    if engine == "opensearch":
        tls = {}
        for layer in ("transport", "http"):
            tls |= {f"plugins.security.ssl.{layer}.pemcert_filepath": "certs/node.pem",
                    f"plugins.security.ssl.{layer}.pemkey_filepath": "certs/node.key",
                    f"plugins.security.ssl.{layer}.pemtrustedcas_filepath": "certs/ca.pem"}
        return {**tls, "plugins.security.ssl.http.enabled": "true",
                "plugins.security.system_indices.enabled": "true"}
    settings = {"xpack.security.enabled": "true", "xpack.security.http.ssl.enabled": "true",
                "xpack.security.transport.ssl.enabled": "true",
                "xpack.security.transport.ssl.verification_mode": "certificate"}
    for layer in ("http", "transport"):
        settings |= {f"xpack.security.{layer}.ssl.key": "certs/node.key",
                     f"xpack.security.{layer}.ssl.certificate": "certs/node.pem",
                     f"xpack.security.{layer}.ssl.certificate_authorities": "certs/ca.pem"}
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
        fh.write(f"\nplugins.security.nodes_dn: [{json.dumps(NODE_DN)}]\n"
                 f"plugins.security.authcz.admin_dn: [{json.dumps(ADMIN_DN)}]\n"
                 'plugins.security.restapi.roles_enabled: ["all_access"]\n')
    sec = config_dir / "opensearch-security"
    users = {"_meta": {"type": "internalusers", "config_version": 2}}
    for user, role in USERS.items():
        users[user] = {"hash": _bcrypt(setup.credentials[user]), "reserved": False,
                       "description": f"vistag local {user.split('-')[1]}"}
    mapping = {"_meta": {"type": "rolesmapping", "config_version": 2},
               "all_access": {"reserved": False, "users": ["vistag-admin"]},
               INDEXER: {"users": ["vistag-indexer"]}, STOREFRONT: {"users": ["vistag-storefront"]}}
    role_file = {"_meta": {"type": "roles", "config_version": 2},
                 **{name: {"reserved": False, **body} for name, body in roles.items()}}
    (sec / "internal_users.yml").write_text(_yaml(users))
    (sec / "roles_mapping.yml").write_text(_yaml(mapping))
    (sec / "roles.yml").write_text(_yaml(role_file))


def _configure_elasticsearch(config_dir: Path, setup: SecureSetup, roles: dict[str, dict]) -> None:
    # The file realm: no .security index needed (the integ-test zip cannot create one).
    (config_dir / "roles.yml").write_text(_yaml({name: {k: v for k, v in body.items() if k != "description"}
                                                 for name, body in roles.items()}))
    (config_dir / "users").write_text("".join(f"{user}:{_bcrypt(setup.credentials[user], '$2a$')}\n" for user in USERS))
    members: dict[str, list[str]] = {"superuser": ["vistag-admin"], INDEXER: ["vistag-indexer"],
                                     STOREFRONT: ["vistag-storefront"]}
    (config_dir / "users_roles").write_text("".join(f"{role}:{','.join(users)}\n" for role, users in members.items()))
