"""``vistag engine install|start|stop|status|url``: see :mod:`vistag.local.manage`."""

from __future__ import annotations

import argparse

from vistag.cli.options import add_engine
from vistag.cli.output import print_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``vistag engine`` and its actions."""
    engine = sub.add_parser(
        "engine",
        help="download, start, stop and inspect a local engine node",
        description="Manage a local engine node, or a cluster of several (--nodes), bound to "
        "127.0.0.1 (data under $VISTAG_HOME).",
    )
    actions = engine.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (
        ("start", "start the node (reuses a running one) and wait for yellow health"),
        ("stop", "stop the node cleanly"),
        ("status", "print the node's state"),
        ("url", "print the node's URL (empty and exit 1 when not running)"),
        ("install", "download and lay out the distribution without starting it"),
    ):
        p = actions.add_parser(action, help=text, description=text)
        add_engine(p, "engine")
        p.add_argument(
            "--version",
            dest="engine_version",
            default=None,
            metavar="V",
            help="another pinned line: OpenSearch 3 (3.6.0) or Elasticsearch 9 (9.5.0), a major or the "
            "full version; they need Java 21+ (default: OpenSearch 2.19.1 / Elasticsearch 8.19.21)",
        )
        p.add_argument(
            "--with",
            dest="with_",
            action="append",
            choices=["ml", "security"],
            metavar="EXTRA",
            help="optional plugin set (OpenSearch): `ml` = ml-commons + job-scheduler (~360 MB; ingest and "
            "search pipelines that call `vistag service`), `security` = the security plugin "
            "(--secure adds it); such a node is separate from the plain one",
        )
        if action == "start":
            p.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
            p.add_argument(
                "--heap",
                default=None,
                help="JVM heap per node, at most 1g recommended (default 1g; 768m per node of a cluster)",
            )
            p.add_argument(
                "--drop-index",
                default=None,
                metavar="INDEX",
                help="remove this index's data before starting and delete it once the node runs: the way "
                "out of an index that kills the node at start (its documents are lost)",
            )
        if action != "install":
            p.add_argument(
                "--nodes",
                type=int,
                default=1,
                metavar="N",
                help="an N-node cluster on loopback (seed hosts, one data folder and port pair per node; "
                "indices get one replica from 2 nodes on)",
            )
            p.add_argument(
                "--secure",
                action="store_true",
                help="a secured node (or cluster): TLS on HTTP and transport from a private CA made with "
                "openssl, internal users vistag-admin, vistag-indexer and vistag-storefront with the "
                "roles of `vistag security roles` (passwords in $VISTAG_HOME/security/<engine>/"
                "credentials.json, mode 600); separate from the plain node",
            )
        if action == "status":
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Manage the local node (or cluster) of ``--engine``."""
    from vistag.local.manage import (
        LocalEngine,
        engine_status,
        engine_url,
        install_engine,
        start_engine,
        stop_engine,
    )

    local = LocalEngine(
        args.engine,
        args.engine_version,
        tuple(args.with_ or ()),
        getattr(args, "secure", False),
        getattr(args, "nodes", 1) or 1,
        getattr(args, "heap", None),
    )
    if args.action == "install":
        print(install_engine(local))
    elif args.action == "start":
        started = start_engine(local, port=args.port, drop_index=args.drop_index)
        print(",".join(started.urls))
        if started.dropped:
            print(f"index {started.dropped!r} removed")
        if started.setup is not None:
            print(
                f"TLS CA certificate: {started.setup.ca_cert} (pass --ca-cert)\nusers: "
                f"{', '.join(started.setup.credentials)}; their passwords: "
                f"{started.setup.directory / 'credentials.json'} (mode 600)"
            )
    elif args.action == "stop":
        print("\n".join(stop_engine(local)))
    elif args.action == "url":
        url = engine_url(local)
        if not url:
            return 1
        print(url)
    else:
        status = engine_status(local)
        if args.json:
            print_json(status.to_dict())
        else:
            _print_status(status)
    return 0


def _print_status(status) -> None:  # type: ignore[no-untyped-def]
    node, cluster = status.node, status.cluster
    if node.running:
        print(f"{node.engine} {node.version}: running at {node.url} (pid {node.pid}, health {node.health})")
    elif not cluster:
        print(f"{node.engine} {node.version}: not running (home {node.home})")
    if cluster:
        print(
            f"{cluster.engine} {cluster.version} cluster of {len(cluster.nodes)}: "
            f"health {cluster.health or 'unreachable'}, {cluster.number_of_nodes or 0} joined (home {cluster.home})"
        )
        for i, member in enumerate(cluster.nodes, start=1):
            state = f"running at {member.url} (pid {member.pid})" if member.running else "not running"
            print(f"  node {i}: {state}")
