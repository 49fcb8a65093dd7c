"""Bigtable: an instance sized by config and one garbage-collected table per pipeline version."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from infra.gcp.serving import Serving, ServingArgs
from tests.infra.gcp.conftest import CMEK_KEY, GcpStack, agent, named, run_layer
from tests.infra.mocks import Recording, resolve, run_program

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


def serving_args(**values: Any) -> ServingArgs:
    return ServingArgs(project="acme-data", zone="europe-west1-b", **values)


def test_autoscaling_may_span_a_factor_of_ten_at_most():
    """Bigtable autoscaling refuses a maximum above 10 x the minimum: "the maximum node count
    in your range cannot be more than 10 times the minimum node count"
    (https://cloud.google.com/blog/products/databases/dive-deep-into-bigtable-autoscaling-and-how-it-optimizes-costs,
    https://cloud.google.com/bigtable/docs/autoscaling)."""
    assert serving_args(min_nodes=2, max_nodes=20).autoscaling
    with pytest.raises(ValueError, match=r"max_nodes: got 21; .* at most 10 x min_nodes \(20\)"):
        serving_args(min_nodes=2, max_nodes=21)


@pytest.mark.parametrize("percent", [9, 81])
def test_the_cpu_target_stays_within_what_bigtable_accepts(percent: int):
    """AutoscalingTargets.cpu_utilization_percent is "limited between 10 and 80, otherwise it
    will return INVALID_ARGUMENT"
    (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Bigtable.Admin.V2/latest/Google.Cloud.Bigtable.Admin.V2.AutoscalingTargets)."""
    with pytest.raises(ValueError, match=rf"cpu_target_percent: got {percent}; .*10-80"):
        serving_args(cpu_target_percent=percent)
    assert serving_args(cpu_target_percent=80).cpu_target_percent == 80


@pytest.mark.parametrize(
    ("storage_type", "refused", "accepted"),
    [("SSD", (2559, 5121), (2560, 5120)), ("HDD", (8191, 16385), (8192, 16384))],
)
def test_the_storage_target_per_node_stays_within_the_range_of_the_storage_type(
    storage_type: Literal["SSD", "HDD"], refused: tuple[int, int], accepted: tuple[int, int]
):
    """AutoscalingTargets.storage_utilization_gib_per_node: 2560-5120 GiB on SSD, 8192-16384
    on HDD, otherwise INVALID_ARGUMENT
    (https://cloud.google.com/dotnet/docs/reference/Google.Cloud.Bigtable.Admin.V2/latest/Google.Cloud.Bigtable.Admin.V2.AutoscalingTargets)."""
    for gib in refused:
        with pytest.raises(
            ValueError, match=rf"storage_target_gib: got {gib}; .* on {storage_type}"
        ):
            serving_args(storage_type=storage_type, storage_target_gib=gib)
    for gib in accepted:
        assert serving_args(storage_type=storage_type, storage_target_gib=gib).storage_target_gib


def test_the_autoscaling_targets_reach_the_cluster():
    recording = run_layer(
        lambda: Serving("kappa-test", serving_args(cpu_target_percent=50, storage_target_gib=4096))
    )
    assert cluster(recording)["autoscalingConfig"] == {
        "minNodes": 1,
        "maxNodes": 3,
        "cpuTarget": 50,
        "storageTarget": 4096,
    }


def test_the_tables_are_names_and_the_live_table_is_the_live_versions():
    built: list[Serving] = []
    run_layer(
        lambda: built.append(
            Serving("kappa-test", serving_args(versions=("v1", "v2"), live_version="v2"))
        )
    )
    assert {v: resolve(t) for v, t in built[0].tables.items()} == {
        "v1": "aggregates_v1",
        "v2": "aggregates_v2",
    }
    assert resolve(built[0].live_table) == "aggregates_v2"


def test_the_store_outputs_where_the_tables_are():
    built: list[Serving] = []
    recording = run_layer(lambda: built.append(Serving("kappa-test", serving_args())))
    assert resolve(built[0].outputs) == {
        "instance": recording.one(INSTANCE).outputs["name"],
        "column_family": "agg",
    }


def test_a_live_version_outside_the_versions_is_refused():
    with pytest.raises(ValueError, match="live_version 'v3'"):
        run_layer(lambda: Serving("kappa-test", serving_args(live_version="v3")))


def test_a_kind_without_a_store_is_refused_by_name_before_anything_is_declared():
    recording = Recording()
    with pytest.raises(
        ValueError, match="serving kind 'bigquery' is not built on GCP; built: bigtable"
    ):
        run_program(
            lambda: Serving("kappa-test", serving_args(kind="bigquery")), recording=recording
        )
    assert recording.resources == []
