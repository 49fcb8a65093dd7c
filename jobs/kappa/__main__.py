"""`python -m kappa --spec PATH`: the same job as `spark-submit jobs/run_pipeline.py`."""

import sys

from .cli import main

sys.exit(main())
