"""``python -m choreoscope``: the ``choreoscope`` command, for when its script is
not on the PATH (a virtualenv not activated)."""

import sys

from choreoscope.cli import main

sys.exit(main())
