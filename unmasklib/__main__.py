"""`python -m unmasklib ...`: the `unmask3d` command line (see `unmasklib.cli`)."""

import sys

from .cli import main

sys.exit(main())
