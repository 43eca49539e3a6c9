"""``python -m maskscope``: the same as the ``maskscope`` command."""

import sys

from maskscope.cli.main import main

sys.exit(main())
