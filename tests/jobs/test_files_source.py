"""The files source: one record per line, each known by its file and line number."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kappa.sources import read_stream
from kappa.spec import PostgresSink

from tests.jobs.support import make_spec

pytestmark = pytest.mark.spark


def _read_all(spark: Any, spec: Any, checkpoint: Path) -> list[tuple[str, str]]:
    rows: list[Any] = []
    query = (
        read_stream(spark, spec)
        .writeStream.option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .foreachBatch(lambda frame, _: rows.extend(frame.collect()))
        .start()
    )
    query.awaitTermination(120)
    return sorted((row["record_id"], row["payload"]) for row in rows)


def test_each_line_is_a_record_known_by_its_file_and_line_number(
    spark: Any, tmp_path: Path
) -> None:
    # Only the source is read: the sink is never opened.
    unused = PostgresSink(host="unused", database="unused", user="unused", table="unused")
    spec = make_spec(tmp_path, sink=unused)
    source = Path(spec.source.path)  # type: ignore[union-attr]
    # Spark's line reader takes \n, \r\n and \r as line ends, keeps empty lines, and has no
    # line after the last line end.
    (source / "a.json").write_bytes(b"{bad\n\n{bad\r\nlast")
    (source / "b.json").write_bytes(b"{bad\r{bad\n")
    rows = _read_all(spark, spec, tmp_path / "first")
    uri = f"file:{source.resolve()}"  # how Spark writes a local path
    assert [(record_id.replace(uri, "<dir>"), payload) for record_id, payload in rows] == [
        ("<dir>/a.json:1", "{bad"),
        ("<dir>/a.json:2", ""),
        ("<dir>/a.json:3", "{bad"),
        ("<dir>/a.json:4", "last"),
        ("<dir>/b.json:1", "{bad"),
        ("<dir>/b.json:2", "{bad"),
    ]
    # Read again (a fresh query: what a replay of the batch reads), the same identities.
    assert _read_all(spark, spec, tmp_path / "second") == rows
