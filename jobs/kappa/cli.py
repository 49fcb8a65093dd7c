"""Command line: `spark-submit jobs/run_pipeline.py --spec URI [--stop-marker URI]`, or
locally `python -m kappa --spec PATH` (with jobs/ on sys.path)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from . import objects
from .spec import PipelineSpec, SpecError

logger = logging.getLogger("kappa")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kappa", description=__doc__)
    parser.add_argument("--spec", required=True, help="pipeline spec: s3://, gs:// or a path")
    parser.add_argument(
        "--stop-marker",
        help="object whose appearance stops the job gracefully (s3://, gs:// or a path)",
    )
    parser.add_argument(
        "--master",
        help="Spark master when not launched by spark-submit (default local[*])",
    )
    return parser.parse_args(argv)


def load_spec(uri: str) -> PipelineSpec:
    return PipelineSpec.from_json(objects.read_bytes(uri))


def _ship_package_to_local_workers() -> None:
    """Local runs: let Spark's Python workers import this package too.

    On a cluster the package arrives as a zip through --py-files. Run from a source tree,
    the workers only see PYTHONPATH, which must be set before the JVM starts.
    """
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not os.path.isdir(package_parent):  # imported from a zip: Spark ships it already
        return
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if package_parent not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([package_parent, *filter(None, paths)])


def build_session(app_name: str, master: str | None) -> object:
    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    _ship_package_to_local_workers()
    builder = SparkSession.builder.appName(app_name)
    launched = SparkConf()
    if master or not launched.contains("spark.master"):
        builder = builder.master(master or "local[*]")
        # Local workers run `python3` from PATH unless told otherwise, which is not this
        # interpreter (nor its packages) when a virtualenv is used without being activated.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        if not launched.contains("spark.sql.shuffle.partitions"):
            # Spark's default of 200 state/shuffle partitions makes every local micro-batch
            # slow; clusters get their value from spark-submit. It is fixed in the checkpoint
            # at the first run, so it is chosen here, before the query ever starts.
            builder = builder.config("spark.sql.shuffle.partitions", str(os.cpu_count() or 2))
    # Windows and the serving store's ISO-8601 window starts are in UTC, wherever this runs.
    return builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except (SpecError, objects.ObjectStoreError) as error:
        print(f"kappa: {error}", file=sys.stderr)
        return 2

    from .runner import StopRequest, run

    stop = StopRequest(args.stop_marker)
    if stop.poll():
        logger.info("stop marker %s already present; not starting", args.stop_marker)
        return 0
    spark = build_session(f"kappa-{spec.pipeline_version}", args.master)
    # After the session: PySpark installs its own SIGINT handler, which would cancel jobs.
    stop.install_signal_handlers()
    result = run(spark, spec, stop)  # type: ignore[arg-type]
    logger.info(
        "stopped (%s) after %d batches", result.stop_reason or "query ended", result.batches
    )
    return 0
