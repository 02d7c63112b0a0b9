"""``python -m visionkit``: see :mod:`visionkit.cli`."""

import sys

from visionkit.cli import main

sys.exit(main())
