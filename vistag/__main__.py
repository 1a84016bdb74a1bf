"""``python -m vistag``."""

import sys

from vistag.cli.main import main

if __name__ == "__main__":  # decode worker processes (spawn) must not run the CLI again
    sys.exit(main())
