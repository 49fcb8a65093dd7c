"""Each serving sink against its real local server: upsert, fenced replay, merge, layout.

The contract tests (row shape, batch fence, replay, merge) run on every kind the job registers
in kappa.sinks.SINKS, each on its local store from tests/jobs/stores.py: a new sink cannot
skip them.
"""

from __future__ import annotations

import itertools
import typing
from datetime import UTC, datetime
from typing import Any

import pytest
from kappa.events import stat_columns
from kappa.sinks import SINKS, open_sink
from kappa.sinks import base as sink_base
from kappa.sinks.bigtable import row_key
from kappa.sinks.merge import LAST_BATCH_ATTRIBUTE, merge
from kappa.spec import (
    SERVING_EXPIRY_ATTRIBUTE,
    SERVING_KEY_ATTRIBUTE,
    SERVING_WINDOW_ATTRIBUTE,
    PostgresSink,
    Sink,
)

from tests.jobs import stores
from tests.jobs.support import VALUE_FIELDS, make_spec

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator"),
]

_SCHEMA = (
    "key string, window_start string, value_count long, value_sum double, value_min double, "
    "value_max double, weight_count long, weight_sum double, weight_min double, "
    "weight_max double"
)
_versions = itertools.count()


def _aggregates(spark: Any, rows: list[tuple[str, str, float]]) -> Any:
    """One aggregate row per (key, window, single value), weight fixed at 1."""
    return spark.createDataFrame(
        [(k, w, 1, v, v, v, 1, 1.0, 1.0, 1.0) for k, w, v in rows], _SCHEMA
    ).repartition(2)


def _by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["key"], r["window_start"]): r for r in rows}


@pytest.fixture(
    params=[(kind, path) for kind in sorted(SINKS) for path in ("driver", "executors")],
    ids=lambda param: "-".join(param),
)
def store(
    request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any, str]:
    """A sink of each registered kind on its local server (moto / throwaway PostgreSQL /
    bttest), its table created as infra would; its rows written from the driver, as a
    batch's few aggregates are, or from the executors, as many are (write_aggregates)."""
    kind, path = request.param
    if path == "executors":
        monkeypatch.setattr(sink_base, "DRIVER_WRITE_MAX_ROWS", 0)
    backing = stores.local_store(kind, request)
    spec = make_spec(tmp_path, sink=backing.sink, version=f"s{next(_versions)}")
    assert spec.sink.kind == kind, "the local store is not of the registered kind"
    backing.create_table(spec.serving_table)
    sink = open_sink(spec)
    sink.prepare()
    return sink, backing, spec.serving_table


def test_every_spec_sink_kind_has_a_registered_sink_and_a_local_store() -> None:
    """The spec's sink models, the job's sinks and the local stores name the same kinds."""
    union, _discriminator = typing.get_args(Sink)
    kinds = {model.model_fields["kind"].default for model in typing.get_args(union)}
    assert set(SINKS) == kinds
    assert set(stores.LOCAL_STORES) == kinds


def test_a_sink_kind_without_a_local_store_fails_rather_than_skips(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.delitem(stores.LOCAL_STORES, "postgres")
    with pytest.raises(pytest.fail.Exception, match="'postgres' has no local store"):
        stores.local_store("postgres", request)


def test_every_row_carries_the_serving_row_contract(spark: Any, store: Any) -> None:
    """Key, window start, count/sum/min/max of each value field and the last batch id."""
    sink, backing, table = store
    sink.upsert(_aggregates(spark, [("a", "2026-11-25T10:05:00Z", 2.5)]), 7)
    [row] = backing.read_rows(table)
    contract = [
        SERVING_KEY_ATTRIBUTE,
        SERVING_WINDOW_ATTRIBUTE,
        *(column for name in VALUE_FIELDS for column in stat_columns(name)),
        LAST_BATCH_ATTRIBUTE,
    ]
    assert {column: row.get(column) for column in contract} == {
        SERVING_KEY_ATTRIBUTE: "a",
        SERVING_WINDOW_ATTRIBUTE: "2026-11-25T10:05:00Z",
        "value_count": 1,
        "value_sum": 2.5,
        "value_min": 2.5,
        "value_max": 2.5,
        "weight_count": 1,
        "weight_sum": 1.0,
        "weight_min": 1.0,
        "weight_max": 1.0,
        LAST_BATCH_ATTRIBUTE: 7,
    }


def test_upsert_writes_one_row_per_key_and_window(spark: Any, store: Any) -> None:
    sink, backing, table = store
    sink.upsert(
        _aggregates(
            spark, [("a", "2026-11-25T10:05:00Z", 2.0), ("b", "2026-11-25T10:05:00Z", 3.0)]
        ),
        0,
    )
    rows = _by_key(backing.read_rows(table))
    assert set(rows) == {("a", "2026-11-25T10:05:00Z"), ("b", "2026-11-25T10:05:00Z")}
    assert rows[("a", "2026-11-25T10:05:00Z")]["value_sum"] == 2.0
    assert rows[("b", "2026-11-25T10:05:00Z")][LAST_BATCH_ATTRIBUTE] == 0


def test_replaying_a_batch_changes_nothing(spark: Any, store: Any) -> None:
    sink, backing, table = store
    batch = _aggregates(spark, [("a", "2026-11-25T10:05:00Z", 2.0)])
    sink.upsert(batch, 3)
    sink.upsert(batch, 3)
    sink.upsert(_aggregates(spark, [("a", "2026-11-25T10:05:00Z", 99.0)]), 2)
    [row] = backing.read_rows(table)
    assert (row["value_count"], row["value_sum"], row[LAST_BATCH_ATTRIBUTE]) == (1, 2.0, 3)


def test_a_later_batch_merges_count_sum_min_max(spark: Any, store: Any) -> None:
    sink, backing, table = store
    sink.upsert(_aggregates(spark, [("a", "2026-11-25T10:05:00Z", 2.0)]), 0)
    sink.upsert(
        _aggregates(
            spark, [("a", "2026-11-25T10:05:00Z", -5.0), ("a", "2026-11-25T10:06:00Z", 7.0)]
        ),
        1,
    )
    rows = _by_key(backing.read_rows(table))
    merged = rows[("a", "2026-11-25T10:05:00Z")]
    assert (merged["value_count"], merged["value_sum"]) == (2, -3.0)
    assert (merged["value_min"], merged["value_max"]) == (-5.0, 2.0)
    assert (merged["weight_count"], merged[LAST_BATCH_ATTRIBUTE]) == (2, 1)
    assert rows[("a", "2026-11-25T10:06:00Z")]["value_count"] == 1


def test_dynamodb_items_expire_only_when_ttl_days_is_set(
    spark: Any, moto_endpoint: str, tmp_path: Any
) -> None:
    for ttl_days, version in ((0, "ttl0"), (2, "ttl2")):
        backing = stores.dynamodb_store(moto_endpoint, ttl_days=ttl_days)
        spec = make_spec(tmp_path, sink=backing.sink, version=version)
        stores.create_dynamodb_table(moto_endpoint, spec.serving_table)
        open_sink(spec).upsert(_aggregates(spark, [("a", "2026-11-25T10:05:00Z", 1.0)]), 0)
        [row] = backing.read_rows(spec.serving_table)
        if ttl_days:
            window_end = datetime(2026, 11, 25, 10, 6, tzinfo=UTC).timestamp()
            assert row[SERVING_EXPIRY_ATTRIBUTE] == window_end + 2 * 86_400
        else:
            assert SERVING_EXPIRY_ATTRIBUTE not in row


def test_dynamodb_sink_names_a_missing_table(moto_endpoint: str, tmp_path: Any) -> None:
    backing = stores.dynamodb_store(moto_endpoint)
    spec = make_spec(tmp_path, sink=backing.sink, version="missing")
    with pytest.raises(RuntimeError, match="agg_missing"):
        open_sink(spec).prepare()


def test_postgres_sink_creates_its_table(postgres: Any, tmp_path: Any) -> None:
    backing = stores.postgres_store(postgres)
    spec = make_spec(tmp_path, sink=backing.sink, version="fresh")
    open_sink(spec).prepare()
    open_sink(spec).prepare()  # idempotent: IF NOT EXISTS
    assert backing.read_rows(spec.serving_table) == []


def test_postgres_password_comes_from_the_named_environment_variable(
    postgres: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAPPA_TEST_PG_PASSWORD", "s3cret")
    sink = PostgresSink(
        host=postgres.host,
        port=postgres.port,
        database=postgres.database,
        user=postgres.user,
        table="agg",
        sslmode="disable",
        password_env="KAPPA_TEST_PG_PASSWORD",
    )
    serving = open_sink(make_spec(tmp_path, sink=sink, version="pw"))
    assert serving._target.password == "s3cret"  # type: ignore[attr-defined]


def test_bigtable_row_keys_sort_by_key_then_window() -> None:
    keys = ["a", "a#b", "a\x00z", "ab", "b"]
    windows = ["2026-11-25T10:05:00Z", "2026-11-25T10:06:00Z"]
    encoded = [(row_key(k, w), (k, w)) for k in keys for w in windows]
    assert [pair for _, pair in sorted(encoded)] == sorted((k, w) for k in keys for w in windows)


def test_bigtable_sink_stores_readable_cells(
    spark: Any, bigtable_emulator: str, tmp_path: Any
) -> None:
    backing = stores.bigtable_store()
    spec = make_spec(tmp_path, sink=backing.sink, version="cells")
    stores.create_bigtable_table(spec.serving_table)
    open_sink(spec).upsert(_aggregates(spark, [("k", "2026-11-25T10:05:00Z", 1.25)]), 0)
    [row] = backing.read_rows(spec.serving_table)
    assert row["_row_key"] == b"k\x002026-11-25T10:05:00Z"
    assert (row["key"], row["window_start"], row["value_sum"]) == (
        "k",
        "2026-11-25T10:05:00Z",
        1.25,
    )


def test_merge_is_fenced_by_batch_id() -> None:
    stored = {
        "key": "a",
        "window_start": "w",
        LAST_BATCH_ATTRIBUTE: 5,
        "value_count": 1,
        "value_sum": 1.0,
        "value_min": 1.0,
        "value_max": 1.0,
    }
    update = {
        "key": "a",
        "window_start": "w",
        "value_count": 1,
        "value_sum": 2.0,
        "value_min": 2.0,
        "value_max": 2.0,
    }
    assert merge(stored, update, ("value",), 5) is None
    assert merge(stored, update, ("value",), 4) is None
    merged = merge(stored, update, ("value",), 6)
    assert merged is not None
    assert (merged["value_count"], merged["value_sum"], merged["value_max"]) == (2, 3.0, 2.0)


assert VALUE_FIELDS == ("value", "weight")  # _SCHEMA above spells these two fields out
