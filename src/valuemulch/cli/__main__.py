"""``python -m valuemulch.cli``: the same command line as the ``valuemulch`` script."""

import sys

from valuemulch.cli import app

sys.exit(app())
