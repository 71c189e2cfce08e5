"""``python -m concerted``: the command line."""

import sys

from concerted.cli import main

sys.exit(main())
