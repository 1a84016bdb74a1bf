"""``python -m vistag``."""

import sys

from vistag.cli.main import main

sys.exit(main())
