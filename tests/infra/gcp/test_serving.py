"""Bigtable: an instance sized by config and one garbage-collected table per pipeline version."""

from __future__ import annotations

import json
from typing import Any

from infra.gcp.serving import Serving, ServingArgs
from tests.infra.gcp.conftest import CMEK_KEY, GcpStack, agent, named, run_layer
from tests.infra.mocks import Recording

INSTANCE = "gcp:bigtable/instance:Instance"
TABLE = "gcp:bigtable/table:Table"
GC_POLICY = "gcp:bigtable/gCPolicy:GCPolicy"
KEY_GRANT = "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember"


def cluster(recording: Recording) -> dict[str, Any]:
    (only,) = recording.one(INSTANCE)["clusters"]
    return only


def test_instance_autoscales_between_the_configured_nodes(default_stack: Recording):
    config = cluster(default_stack)
    assert config["autoscalingConfig"] == {"minNodes": 1, "maxNodes": 3, "cpuTarget": 60}
    assert config.get("numNodes") is None


def test_equal_min_and_max_nodes_mean_a_fixed_size(gcp_stack: GcpStack):
    config = cluster(gcp_stack(servingMinNodes=2, servingMaxNodes=2))
    assert config["numNodes"] == 2
    assert config.get("autoscalingConfig") is None


def test_instance_is_a_production_ssd_instance(default_stack: Recording):
    assert default_stack.one(INSTANCE)["instanceType"] == "PRODUCTION"
    assert cluster(default_stack)["storageType"] == "SSD"


def test_instance_lives_in_a_zone_of_the_stacks_region(default_stack: Recording):
    assert cluster(default_stack)["zone"] == "europe-west1-b"


def test_serving_zone_is_a_choice(gcp_stack: GcpStack):
    assert cluster(gcp_stack(servingZone="europe-west1-d"))["zone"] == "europe-west1-d"


def test_table_has_the_column_family_the_job_writes(default_stack: Recording):
    table = named(default_stack, TABLE, "kappa-test-v1")
    assert table["name"] == "aggregates_v1"
    assert table["columnFamilies"] == [{"family": "agg"}]
    assert table["instanceName"] == default_stack.one(INSTANCE).outputs["name"]


def test_each_pipeline_version_gets_its_own_table(gcp_stack: GcpStack):
    recording = gcp_stack(pipelineVersions=["v1", "v2-fix"], pipelineLiveVersion="v1")
    assert sorted(t["name"] for t in recording.of_type(TABLE)) == [
        "aggregates_v1",
        "aggregates_v2_fix",
    ]
    assert sorted(p["table"] for p in recording.of_type(GC_POLICY)) == [
        "aggregates_v1",
        "aggregates_v2_fix",
    ]


def test_gc_keeps_only_the_newest_cell_of_an_upserted_row(default_stack: Recording):
    policy = default_stack.one(GC_POLICY)
    assert policy["columnFamily"] == "agg"
    assert json.loads(policy["gcRules"]) == {"rules": [{"max_version": 1}]}


def test_gc_drops_cells_older_than_the_ttl(gcp_stack: GcpStack):
    policy = gcp_stack(servingTtlDays=30).one(GC_POLICY)
    assert json.loads(policy["gcRules"]) == {
        "mode": "union",
        "rules": [{"max_version": 1}, {"max_age": "720h"}],
    }


def test_dev_instance_and_tables_can_be_deleted(default_stack: Recording):
    assert default_stack.one(INSTANCE)["deletionProtection"] is False
    assert {t["deletionProtection"] for t in default_stack.of_type(TABLE)} == {"UNPROTECTED"}


def test_deletion_protection_outside_dev(gcp_stack: GcpStack):
    recording = gcp_stack(environment="prod")
    assert recording.one(INSTANCE)["deletionProtection"] is True
    assert {t["deletionProtection"] for t in recording.of_type(TABLE)} == {"PROTECTED"}


def test_deletion_protection_can_be_turned_off_explicitly(gcp_stack: GcpStack):
    recording = gcp_stack(environment="prod", deletionProtection=False)
    assert recording.one(INSTANCE)["deletionProtection"] is False


def test_instance_id_fits_bigtables_33_characters(gcp_stack: GcpStack):
    name = gcp_stack(stack="a-very-long-stack-name-for-a-feature-branch").one(INSTANCE)["name"]
    assert 6 <= len(name) <= 33


def serving_with_key() -> Serving:
    return Serving(
        "kappa-test", ServingArgs(project="acme-data", zone="europe-west1-b", kms_key=CMEK_KEY)
    )


def test_cmek_encrypts_the_cluster_once_the_bigtable_agent_may_use_the_key():
    recording = run_layer(serving_with_key)
    grant = recording.one(KEY_GRANT)
    assert (grant["cryptoKeyId"], grant["member"]) == (CMEK_KEY, agent("bigtable"))
    assert cluster(recording)["kmsKeyName"] == CMEK_KEY
    assert recording.depends_on(recording.one(INSTANCE), grant)


def test_cmek_creates_the_bigtable_agent_before_granting_it():
    recording = run_layer(serving_with_key)
    identity = recording.one("gcp:projects/serviceIdentity:ServiceIdentity")
    assert identity["service"] == "bigtableadmin.googleapis.com"
    assert recording.depends_on(recording.one(KEY_GRANT), identity)
