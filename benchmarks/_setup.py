"""What every benchmark does before it imports the job or starts Spark.

Import it first: it puts the repository and jobs/ on the path, and sets the environment that
Spark's Python workers inherit when the session starts (they run `python3` from PATH unless
told otherwise, which lacks the job's packages when the virtualenv is not activated, and
they reach moto with throwaway credentials).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "jobs")]
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(REPO / "jobs"), os.environ.get("PYTHONPATH", "")) if p
)
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
    os.environ.setdefault(_name, "bench")


def spark_session(name: str, driver_memory: str = "2g") -> Any:
    """The benchmarks' local[2] session: two shuffle partitions, UTC, no UI or progress bars."""
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName(name)
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark
