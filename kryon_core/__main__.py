"""``python -m kryon_core``: the ``kryon`` command."""

import sys

from .cli import main

sys.exit(main())
