"""Entry point of the ``vistag`` command: logging set-up, dispatch, error reporting, exit codes.

A :class:`~vistag.errors.VistagError` (something the user can fix: a bad flag, a
missing file, an engine that refuses) is printed in one line and exits 1; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from vistag.cli.parser import build_parser
from vistag.errors import VistagError


def setup_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr at the level ``-v``/``-q`` ask for (the only place vistag configures logging)."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if verbose < 2:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
        # The clients log every failed attempt with a traceback; vistag's retry layer reports
        # what matters (retries, give-ups) in one line each.
        for name in ("opensearch", "elastic_transport", "elasticsearch"):
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (0 success, 1 failure, 2 usage error, 130 interrupted).

    Examples:
        >>> main(["security", "roles", "--engine", "opensearch", "--json"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.handler(args) or 0)
    except VistagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `vistag ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
