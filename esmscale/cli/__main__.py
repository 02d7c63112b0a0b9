"""``python -m esmscale.cli``: see :mod:`esmscale.cli`."""

import sys

from esmscale.cli import main

sys.exit(main())
