"""Least-privilege roles for vistag's two jobs on a real cluster.

Two roles, for each engine, in the shape its security API and files take:

* ``vistag_indexer``: what ``vistag index``/``sync``/``reindex`` need: create and
  write the ``<index>*`` indices, manage their aliases, templates, stored search
  templates and pipelines; nothing on any other index.
* ``vistag_storefront``: what a storefront that calls the engine directly needs:
  search, ``_msearch``, ``_mget`` and stored search templates on the alias only;
  no writes, no deletes, no other index.

:func:`role_definitions` is the one place these are written down: ``vistag
security roles`` prints them for a cluster admin, and a local node started with
``vistag engine start --secure`` (:mod:`vistag.local.security`) installs the very
same ones.

Examples:
    >>> sorted(role_definitions("opensearch", "products"))
    ['vistag_indexer', 'vistag_storefront']
"""

from __future__ import annotations

import json
from typing import Any

from vistag.errors import ConfigError

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
                    "cluster_manage_index_templates",
                    "cluster_manage_pipelines",
                    "cluster:admin/search/pipeline/put",
                    "cluster:admin/search/pipeline/get",
                    "cluster:admin/script/put",
                    "cluster:admin/script/get",
                    "cluster:monitor/health",
                    "cluster:monitor/main",
                    "cluster:monitor/nodes/info",
                    "indices:data/write/bulk",
                    "indices:data/read/msearch",
                    "indices:data/read/mget",
                    "indices:data/read/scroll",
                    "indices:data/read/scroll/clear",
                ],
                "index_permissions": [
                    {
                        "index_patterns": [pattern],
                        "allowed_actions": ["crud", "create_index", "manage", "manage_aliases"],
                    }
                ],
            },
            STOREFRONT: {
                "description": f"vistag storefront: search and run search templates on {alias} only",
                "cluster_permissions": [
                    # GET / and _nodes/plugins: version and modules, which vistag reads to shape its queries
                    "cluster:monitor/main",
                    "cluster:monitor/nodes/info",
                    "indices:data/read/msearch",
                    "indices:data/read/msearch/template",
                    "indices:data/read/mget",
                    "indices:data/read/scroll",
                    "indices:data/read/scroll/clear",
                ],
                # read, plus the index's existence and mapping (vistag's Searcher reads the vector dimension).
                "index_permissions": [
                    {
                        "index_patterns": [alias],
                        "allowed_actions": ["read", "indices:admin/get", "indices:admin/mappings/get"],
                    }
                ],
            },
        }
    if engine == "elasticsearch":
        return {
            INDEXER: {
                "description": f"vistag indexer: write and manage {pattern} (templates, aliases, pipelines)",
                "cluster": ["manage_index_templates", "manage_ingest_pipelines", "monitor"],
                "indices": [
                    {
                        "names": [pattern],
                        "privileges": ["create_index", "write", "delete", "read", "view_index_metadata", "manage"],
                    }
                ],
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
            body = {k: v for k, v in body.items() if k != "description"} | {
                "metadata": {"description": body["description"]}
            }
        parts.append(f"PUT {path}/{name}\n{json.dumps(body, indent=2)}")
    mapping = (
        "\n\n# then map users or backend roles to them, e.g.\n"
        f"PUT _plugins/_security/api/rolesmapping/{INDEXER}\n" + json.dumps({"users": ["vistag-indexer"]}, indent=2)
        if engine == "opensearch"
        else '\n\n# then give users the roles (native realm: PUT _security/user/<name> {"roles": [...]}; '
        "file realm: config/users_roles)"
    )
    return "\n\n".join(parts) + mapping + "\n"
