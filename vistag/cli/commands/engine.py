"""``vistag engine start|stop|status|url|install``."""

from __future__ import annotations

import argparse

from vistag.cli.commands.common import print_json
from vistag.engine.local import LocalNode


def cmd_engine(args: argparse.Namespace) -> int:
    """Manage the local node of ``--engine``."""
    node = LocalNode(args.engine, heap=getattr(args, "heap", "1g"), extras=tuple(getattr(args, "with_", None) or ()),
                     version=getattr(args, "engine_version", None))
    if args.action == "install":
        print(node.install())
    elif args.action == "start":
        print(node.start(port=args.port))
    elif args.action == "stop":
        print(f"{args.engine}: {'stopped' if node.stop() else 'not running'}")
    elif args.action == "url":
        url = node.url
        if not url:
            return 1
        print(url)
    else:
        status = node.status()
        if args.json:
            print_json(status.__dict__)
        elif status.running:
            print(f"{status.engine} {status.version}: running at {status.url} (pid {status.pid}, health {status.health})")
        else:
            print(f"{status.engine} {status.version}: not running (home {status.home})")
    return 0
