"""``python -m kryon_core.cli``: the ``kryon`` command."""

import sys

from . import main

sys.exit(main())
