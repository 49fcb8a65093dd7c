"""Serving: one table of aggregates per pipeline version, declared by the kind's store;
DynamoDB's is encrypted and recoverable."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pytest
from kappa.spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE, DynamoDbSink

from infra.aws.iam import NodeGrant
from infra.aws.serving import STORES, Serving, ServingArgs
from infra.aws.stores.dynamodb import node_grants
from infra.stores import DeclaredStore, SinkContext, StoreScope, StoreTable, VersionTable
from tests.infra.mocks import Recording, resolve, run_program

KEY = "arn:aws:kms:eu-west-1:123456789012:key/serving-test"


def tables(**args):
    recording = run_program(lambda: Serving("s", ServingArgs(kms_key_arn=KEY, **args)))
    return recording.of_type("aws:dynamodb/table:Table")


def test_rows_are_keyed_by_event_key_and_window_start():
    (table,) = tables()
    assert table["hashKey"] == SERVING_KEY_ATTRIBUTE
    assert table["rangeKey"] == SERVING_WINDOW_ATTRIBUTE
    assert {a["name"]: a["type"] for a in table["attributes"]} == {
        SERVING_KEY_ATTRIBUTE: "S",
        SERVING_WINDOW_ATTRIBUTE: "S",
    }


def test_table_is_on_demand_recoverable_encrypted_and_has_a_ttl_attribute():
    (table,) = tables()
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["pointInTimeRecovery"] == {"enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": KEY}
    assert table["ttl"] == {"attributeName": "expires_at", "enabled": True}


def test_each_pipeline_version_gets_its_own_table():
    names = sorted(t["name"] for t in tables(versions=("v1", "v2"), live_version="v2"))
    assert names == ["s-aggregates_v1", "s-aggregates_v2"]


def test_the_live_table_is_the_live_versions():
    built: list[Serving] = []
    run_program(
        lambda: built.append(
            Serving("s", ServingArgs(kms_key_arn=KEY, versions=("v1", "v2"), live_version="v2"))
        )
    )
    assert resolve(built[0].live_table) == "s-aggregates_v2"


def test_deletion_protection_follows_the_args():
    assert tables()[0]["deletionProtectionEnabled"] is True
    assert tables(deletion_protection=False)[0]["deletionProtectionEnabled"] is False


def test_a_live_version_outside_the_versions_is_refused():
    with pytest.raises(ValueError, match="live_version 'v3'"):
        run_program(lambda: Serving("s", ServingArgs(kms_key_arn=KEY, live_version="v3")))


class StandInStore:
    """A second kind of store, registered the way RDS or Redshift would be."""

    def __init__(self) -> None:
        self.declared: list[VersionTable] = []

    def declare(
        self, scope: StoreScope, tables: Sequence[VersionTable], args: ServingArgs
    ) -> DeclaredStore[NodeGrant]:
        self.declared.extend(tables)
        declared = {
            table.version: StoreTable(
                name=pulumi.Output.from_input(table.table_name),
                id=pulumi.Output.from_input(
                    f"arn:aws:rds:eu-west-1:123456789012:{table.table_name}"
                ),
            )
            for table in tables
        }
        return DeclaredStore(tables=declared, grants=node_grants([]))

    def spec_sink(self, context: SinkContext) -> DynamoDbSink:
        return DynamoDbSink(table=context.table_base, region=context.region)


def test_the_serving_kind_chooses_the_store_that_declares_the_tables(
    monkeypatch: pytest.MonkeyPatch,
):
    store = StandInStore()
    monkeypatch.setitem(STORES, "rds", store)
    built: list[Serving] = []
    args = ServingArgs(kms_key_arn=KEY, versions=("v1", "v2"), live_version="v2", kind="rds")
    recording = run_program(lambda: built.append(Serving("s", args)))
    assert store.declared == [
        VersionTable(version="v1", resource_name="s-v1", table_name="s-aggregates_v1"),
        VersionTable(version="v2", resource_name="s-v2", table_name="s-aggregates_v2"),
    ]
    assert recording.of_type("aws:dynamodb/table:Table") == []
    assert resolve(built[0].table_ids["v2"]) == (
        "arn:aws:rds:eu-west-1:123456789012:s-aggregates_v2"
    )
    assert resolve(built[0].live_table) == "s-aggregates_v2"
    assert built[0].kind == "rds"


def test_a_kind_without_a_store_is_refused_by_name_before_anything_is_declared():
    recording = Recording()
    with pytest.raises(
        ValueError, match="serving kind 'redshift' is not built on AWS; built: dynamodb"
    ):
        run_program(
            lambda: Serving("s", ServingArgs(kms_key_arn=KEY, kind="redshift")),
            recording=recording,
        )
    assert recording.resources == []


def test_dynamodb_declares_each_versions_table_under_serving():
    recording = run_program(
        lambda: Serving("s", ServingArgs(kms_key_arn=KEY, versions=("v1", "v2"), live_version="v1"))
    )
    tables = recording.of_type("aws:dynamodb/table:Table")
    assert [(t.name, t["tags"]["pipeline-version"]) for t in tables] == [
        ("s-v1", "v1"),
        ("s-v2", "v2"),
    ]
    assert all(t.parent and t.parent.endswith("kappa:aws:Serving::s") for t in tables)
