"""``vistag engine start|stop|status|url|install``."""

from __future__ import annotations

import argparse

from vistag.cli.commands.common import print_json
from vistag.config import vistag_home
from vistag.local.cluster import CLUSTER_HEAP, LocalCluster
from vistag.local.node import DEFAULT_HEAP, LocalNode


def cmd_engine(args: argparse.Namespace) -> int:
    """Manage the local node (or cluster, ``--nodes N``; secured, ``--secure``) of ``--engine``."""
    extras = tuple(getattr(args, "with_", None) or ())
    version = getattr(args, "engine_version", None)
    nodes = getattr(args, "nodes", 1) or 1
    heap = getattr(args, "heap", None)
    common: dict = {"extras": extras, "version": version}
    setup = None
    if getattr(args, "secure", False):
        from vistag.local.security import load_or_create_setup, secure_options

        setup = load_or_create_setup(vistag_home() / "security" / args.engine)
        common.update(secure_options(args.engine, setup), name="secure")
        if args.engine == "opensearch":
            common["extras"] = tuple(sorted({*extras, "security"}))
    node = LocalNode(args.engine, heap=heap or DEFAULT_HEAP, **common)
    if nodes > 1:
        cluster = LocalCluster(args.engine, nodes=nodes, heap=heap or CLUSTER_HEAP, **common)
    else:
        cluster = LocalCluster.find(args.engine, **common) if args.action != "start" else None
    if args.action == "install":
        print(node.install())
    elif args.action == "start":
        print(",".join(cluster.start()) if cluster else node.start(port=args.port))
        if setup is not None:
            print(f"TLS CA certificate: {setup.ca_cert} (pass --ca-cert)\nusers: {', '.join(setup.credentials)}; "
                  f"their passwords: {setup.directory / 'credentials.json'} (mode 600)")
    elif args.action == "stop":
        stopped = [f"{args.engine}: node {'stopped' if node.stop() else 'not running'}"]
        if cluster:
            stopped.append(f"{args.engine}: {cluster.size}-node cluster {'stopped' if cluster.stop() else 'not running'}")
        print("\n".join(stopped))
    elif args.action == "url":
        url = (cluster.url if cluster else None) or node.url
        if not url:
            return 1
        print(url)
    else:
        _print_status(args, node, cluster)
    return 0


def _print_status(args: argparse.Namespace, node: LocalNode, cluster: LocalCluster | None) -> None:
    status = node.status()
    cluster_status = cluster.status() if cluster else None
    if args.json:
        payload = dict(status.__dict__)
        if cluster_status:
            payload["cluster"] = {**cluster_status.__dict__, "nodes": [n.__dict__ for n in cluster_status.nodes]}
        print_json(payload)
        return
    if status.running:
        print(f"{status.engine} {status.version}: running at {status.url} (pid {status.pid}, health {status.health})")
    elif not cluster_status:
        print(f"{status.engine} {status.version}: not running (home {status.home})")
    if cluster_status:
        print(f"{cluster_status.engine} {cluster_status.version} cluster of {len(cluster_status.nodes)}: "
              f"health {cluster_status.health or 'unreachable'}, {cluster_status.number_of_nodes or 0} joined "
              f"(home {cluster_status.home})")
        for i, member in enumerate(cluster_status.nodes, start=1):
            state = f"running at {member.url} (pid {member.pid})" if member.running else "not running"
            print(f"  node {i}: {state}")
