"""DynamoDB: one encrypted, recoverable table of aggregates per pipeline version."""

from __future__ import annotations

import pytest
from kappa.spec import SERVING_KEY_ATTRIBUTE, SERVING_WINDOW_ATTRIBUTE

from infra.aws.serving import Serving, ServingArgs
from tests.infra.mocks import resolve, run_program

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
