"""What spark-submit runs: `spark-submit --py-files kappa.zip run_pipeline.py --spec URI
[--stop-marker URI]`. The package comes from the zip on a cluster, from jobs/ locally."""

import sys

from kappa.cli import main

if __name__ == "__main__":
    sys.exit(main())
