"""`python -m kappa_local run|produce` (with jobs/ on sys.path)."""

import sys

from .cli import main

sys.exit(main())
