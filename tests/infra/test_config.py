"""The stack configuration: safe defaults, and bad input refused before any resource exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    REQUIRED_KEYS,
    UNSET_VALUES,
    ConfigError,
    StackConfig,
    all_keys,
    declared_default,
)
from tests.infra.mocks import Recording
from tests.infra.program import (
    AWS_BASE,
    GCP_BASE,
    MissingStackConfig,
    as_the_cli_merges_it,
    run_main,
)

REPO = Path(__file__).resolve().parents[2]


def parse(cloud: str = "aws", **values: Any) -> StackConfig:
    region = "eu-west-1" if cloud == "aws" else "europe-west1"
    project = "acme-data" if cloud == "gcp" else None
    return StackConfig.parse({"cloud": cloud, **values}, region=region, stack="t", project=project)


def test_a_stack_needs_only_cloud_and_region():
    config = parse("aws")
    assert config.release == "emr-spark-8.0.0"
    assert config.serving_kind == "dynamodb"
    assert config.broker.retention_hours == 168
    assert config.cluster.task_capacity == "spot"
    assert len(config.task_types) >= 3


def test_gcp_defaults_differ_only_where_the_clouds_do():
    config = parse("gcp")
    assert config.release.startswith("3.0")
    assert config.serving_kind == "bigtable"
    assert config.task_types == ("n2-standard-4",)
    assert config.broker.retention_hours == parse("aws").broker.retention_hours


def assumed(roles: Any) -> StackConfig:
    return StackConfig.parse(
        {"cloud": "aws"}, region="eu-west-1", stack="prod-eu", aws_assume_roles=roles
    )


def test_the_aws_role_chain_becomes_sts_arguments_in_the_providers_order():
    config = assumed(
        [
            {"roleArn": "arn:aws:iam::123456789012:role/hop", "sessionName": "ci-run-7"},
            {
                "roleArn": "arn:aws:iam::210987654321:role/deploy",
                "duration": "1h30m",
                "policyArns": ["arn:aws:iam::aws:policy/AmazonEMRFullAccessPolicy_v2"],
                "tags": {"team": "data"},
                "transitiveTagKeys": ["team"],
                "sourceIdentity": "alice",
            },
        ]
    )
    assert config.aws_role_chain == [
        {"RoleArn": "arn:aws:iam::123456789012:role/hop", "RoleSessionName": "ci-run-7"},
        {
            "RoleArn": "arn:aws:iam::210987654321:role/deploy",
            "RoleSessionName": "kappa-prod-eu",
            "DurationSeconds": 5400,
            "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/AmazonEMRFullAccessPolicy_v2"}],
            "Tags": [{"Key": "team", "Value": "data"}],
            "TransitiveTagKeys": ["team"],
            "SourceIdentity": "alice",
        },
    ]
    assert assumed(None).aws_role_chain == []


@pytest.mark.parametrize(
    ("roles", "problem"),
    [
        (
            {"roleArn": "arn:aws:iam::123456789012:role/deploy"},
            "aws:assumeRoles: got {'roleArn': 'arn:aws:iam::123456789012:role/deploy'}; "
            "expected a list of roles",
        ),
        (["deploy"], "aws:assumeRoles[0]: got 'deploy'; expected an object with a roleArn"),
        (
            [{"roleArn": "deploy"}],
            "aws:assumeRoles[0].roleArn: got 'deploy'; expected an IAM role ARN like",
        ),
        (
            [{"roleArn": "arn:aws:iam::123456789012:role/deploy", "role": "x"}],
            "aws:assumeRoles[0].role: got 'x'; not a field of an assumed role (roleArn, ",
        ),
        (
            [{"roleArn": "arn:aws:iam::123456789012:role/deploy", "duration": "13h"}],
            "aws:assumeRoles[0].duration: got '13h'; expected a duration from 15m to 12h",
        ),
        (
            [{"roleArn": "arn:aws:iam::123456789012:role/deploy", "sessionName": "a b"}],
            "aws:assumeRoles[0].sessionName: got 'a b'; expected 2 to 64 letters",
        ),
    ],
    ids=["not-a-list", "not-an-object", "role-arn", "unknown-field", "duration", "session"],
)
def test_a_bad_aws_role_chain_is_refused_naming_the_entry_and_field(roles: Any, problem: str):
    with pytest.raises(ConfigError) as refused:
        assumed(roles)
    assert any(line.startswith(problem) for line in refused.value.problems), refused.value


def test_deletion_protection_is_on_outside_dev():
    assert parse(environment="dev").deletion_protection is False
    assert parse(environment="prod").deletion_protection is True
    assert parse(environment="prod", deletionProtection="false").deletion_protection is False
    assert parse(environment="dev", deletionProtection=True).deletion_protection is True


def test_deletion_protection_names_what_it_takes():
    with pytest.raises(ConfigError, match=r"deletionProtection: got 'maybe'.*auto, true or false"):
        parse(deletionProtection="maybe")


@pytest.mark.parametrize(
    ("cloud", "machine", "architecture"),
    [
        ("aws", "m6i.xlarge", "x86_64"),
        ("aws", "m7g.xlarge", "aarch64"),
        ("aws", "c6gn.2xlarge", "aarch64"),
        ("aws", "g5.xlarge", "x86_64"),
        ("gcp", "n2-standard-4", "x86_64"),
        ("gcp", "c4a-standard-4", "aarch64"),
    ],
)
def test_node_architecture_follows_the_machine_family(cloud, machine, architecture):
    task_types = [machine] * 1 if cloud == "gcp" else None
    values = {"clusterMasterType": machine, "clusterCoreType": machine}
    if cloud == "aws":
        size = machine.partition(".")[2]
        values["clusterTaskTypes"] = [machine, f"c6a.{size}", f"r6a.{size}"]
        if architecture == "aarch64":
            values["clusterTaskTypes"] = [machine, f"c7g.{size}", f"r7g.{size}"]
    else:
        values["clusterTaskTypes"] = task_types
    assert parse(cloud, **values).node_machine == architecture


def test_values_arrive_as_pulumi_text_and_are_decoded():
    config = parse(
        clusterTaskTypes='["m6i.2xlarge","m6a.2xlarge","m5.2xlarge"]', clusterTaskMax="9"
    )
    assert config.task_types == ("m6i.2xlarge", "m6a.2xlarge", "m5.2xlarge")
    assert config.cluster.task_max == 9


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as error:
        parse(
            brokerRetentionHours=9999, clusterTaskMin=5, clusterTaskMax=2, networkCidr="8.8.8.0/24"
        )
    assert len(error.value.problems) == 3


def test_a_removed_key_says_why_it_went():
    """The spot timeout keys did nothing: EMR applies the timeout only while a cluster is
    first provisioned (https://docs.aws.amazon.com/emr/latest/APIReference/API_SpotProvisioningSpecification.html,
    TimeoutDurationMinutes), and the task fleet is added to a running cluster."""
    with pytest.raises(ConfigError) as error:
        parse(clusterSpotTimeoutAction="TERMINATE_CLUSTER")
    (problem,) = error.value.problems
    assert "kappa:clusterSpotTimeoutAction was removed" in problem
    assert "first provisioned" in problem


def test_the_archive_tier_comes_30_days_after_the_cold_tier_at_the_earliest():
    """S3 refuses a lifecycle rule that moves objects out of STANDARD_IA before they spent 30
    days there (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html)."""
    with pytest.raises(ConfigError, match=r"archiveArchiveAfterDays: got 69.*at least .*\(70\)"):
        parse(archiveColdAfterDays=40, archiveArchiveAfterDays=69)
    assert parse(archiveColdAfterDays=40, archiveArchiveAfterDays=70)


def test_outside_read_consumers_default_to_none_and_may_be_zero_to_twenty():
    """brokerReadConsumers counts applications besides the pipeline; the pipeline's own reads
    are the sizing's to count (infra/sizing.py), so the default is 0."""
    assert parse().broker.read_consumers == 0
    assert parse(brokerReadConsumers=0).broker.read_consumers == 0
    assert parse(brokerReadConsumers=20).broker.read_consumers == 20


@pytest.mark.parametrize(
    ("consumers", "bound"), [(-1, "greater than or equal to 0"), (21, "less than or equal to 20")]
)
def test_outside_read_consumers_out_of_range_are_refused_naming_the_key(consumers: int, bound: str):
    with pytest.raises(ConfigError) as refused:
        parse(brokerReadConsumers=consumers)
    assert refused.value.problems == [
        f"kappa:brokerReadConsumers: got {consumers}; Input should be {bound}"
    ]


def test_a_misspelt_key_gets_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"kappa:brokerRetentionHour is not a key.*brokerRetentionHours"
    ):
        parse(brokerRetentionHour=200)


# Each case: config values, and the key the error must name. All are refused by the whole
# program before a single resource is declared.
INVALID_AWS: list[tuple[dict[str, Any], str]] = [
    ({"cloud": "azure"}, "kappa:cloud"),
    ({"environment": "Prod!"}, "kappa:environment"),
    ({"deletionProtection": "maybe"}, "kappa:deletionProtection"),
    ({"brokerRetentionHours": 12}, "kappa:brokerRetentionHours"),
    ({"brokerRetentionHours": 9000}, "kappa:brokerRetentionHours"),
    ({"brokerMode": "serverless"}, "kappa:brokerMode"),
    ({"brokerMode": "on_demand", "brokerShards": 4}, "kappa:brokerShards"),
    ({"brokerReader": "kcl"}, "kappa:brokerReader"),
    ({"brokerIngestKibPerSecond": 0}, "kappa:brokerIngestKibPerSecond"),
    ({"brokerIngestKibPerSecond": "fast"}, "kappa:brokerIngestKibPerSecond"),
    ({"brokerReadConsumers": -1}, "kappa:brokerReadConsumers"),
    ({"brokerReadConsumers": 21}, "kappa:brokerReadConsumers"),
    ({"brokerMaxDeliveryAttempts": 7}, "kappa:brokerMaxDeliveryAttempts"),
    ({"clusterMode": "forever"}, "kappa:clusterMode"),
    ({"clusterRelease": "emr-7.14.0"}, "kappa:clusterRelease"),
    ({"clusterTaskTypes": ["m6i.xlarge"]}, "kappa:clusterTaskTypes"),
    ({"clusterTaskTypes": ["m6i.xlarge", "m6i.xlarge", "m5.xlarge"]}, "kappa:clusterTaskTypes"),
    ({"clusterTaskTypes": ["m6i.xlarge", "m5.2xlarge", "m5a.xlarge"]}, "kappa:clusterTaskTypes"),
    ({"clusterMasterType": "n2-standard-4"}, "kappa:clusterMasterType"),
    ({"clusterTaskMin": 6, "clusterTaskMax": 2}, "kappa:clusterTaskMin"),
    ({"clusterTaskCapacity": "preemptible"}, "kappa:clusterTaskCapacity"),
    ({"clusterSpotTimeoutMinutes": 20}, "kappa:clusterSpotTimeoutMinutes was removed"),
    ({"clusterSpotAllocation": "cheapest"}, "kappa:clusterSpotAllocation"),
    ({"clusterIdleTimeoutMinutes": 20000}, "kappa:clusterIdleTimeoutMinutes"),
    ({"servingKind": "bigtable"}, "kappa:servingKind"),
    ({"servingKind": "rds"}, "kappa:servingKind"),
    ({"servingMinNodes": 2}, "kappa:servingMinNodes"),
    ({"networkVpcId": "vpc-0abc12345678"}, "kappa:networkSubnetIds"),
    ({"networkVpcId": "my-vpc", "networkSubnetIds": ["subnet-0abc1234"]}, "kappa:networkVpcId"),
    ({"networkCidr": "8.8.0.0/16"}, "kappa:networkCidr"),
    ({"networkEgress": "internet"}, "kappa:networkEgress"),
    ({"tags": {"aws:owner": "me"}}, "kappa:tags.aws:owner"),
    ({"kmsKey": "alias/mine"}, "kappa:kmsKey"),
    ({"permissionsBoundary": "team-boundary"}, "kappa:permissionsBoundary"),
    ({"permissionsBoundary": "arn:aws:iam::123456789012:role/x"}, "kappa:permissionsBoundary"),
    ({"kmsKey": "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c"}, "kappa:kmsKey"),
    (
        {
            "networkVpcId": "vpc-0123456789abcdef0",
            "networkSubnetIds": ["subnet-0aaa1111bbbb2222c"],
            "networkEgress": "nat",
        },
        "kappa:networkEgress",
    ),
    ({"archiveColdAfterDays": 90, "archiveArchiveAfterDays": 60}, "kappa:archiveArchiveAfterDays"),
    ({"archiveColdAfterDays": 60, "archiveArchiveAfterDays": 89}, "kappa:archiveArchiveAfterDays"),
    ({"pipelineVersions": ["v1", "V2"]}, "kappa:pipelineVersions"),
    ({"pipelineVersions": ["v1", "v2"]}, "kappa:pipelineLiveVersion"),
    ({"pipelineVersions": ["v1"], "pipelineLiveVersion": "v2"}, "kappa:pipelineLiveVersion"),
    ({"pipelineStartingPosition": "yesterday"}, "kappa:pipelineStartingPosition"),
    ({"pipelineStartingPosition": "2026-01-01T00:00:00"}, "kappa:pipelineStartingPosition"),
    ({"pipelineWindowSeconds": 0}, "kappa:pipelineWindowSeconds"),
    # With no allowance every event would be late: it reaches the broker after its time.
    ({"pipelineWatermarkSeconds": 0}, "kappa:pipelineWatermarkSeconds"),
    ({"pipelineDeduplicationSeconds": -1}, "kappa:pipelineDeduplicationSeconds"),
    ({"eventValueFields": ["key"]}, "kappa:eventValueFields"),
    ({"clusterCoreCount": 0}, "kappa:clusterCoreCount"),
    ({"clusterCoreType": "m7g.xlarge"}, "kappa:clusterTaskTypes"),
]


@pytest.mark.parametrize(
    ("values", "key"), INVALID_AWS, ids=[f"{key}-{i}" for i, (_, key) in enumerate(INVALID_AWS)]
)
def test_invalid_aws_config_names_the_key_and_declares_nothing(values: dict[str, Any], key: str):
    config = {**AWS_BASE, **{f"kappa:{k}": v for k, v in values.items()}}
    recording = Recording()
    with pytest.raises(ConfigError) as error:
        run_main(config, recording=recording)
    assert key in str(error.value)
    assert len(recording) == 0


def test_the_recording_of_a_run_is_kept_when_passed_in():
    """The check above would pass vacuously if a passed-in recording were not filled."""
    recording = Recording()
    run_main(AWS_BASE, recording=recording)
    assert len(recording) > 50


def test_a_missing_region_is_named():
    with pytest.raises(ConfigError, match="aws:region is required"):
        run_main({"kappa:cloud": "aws"})


def test_a_missing_gcp_project_is_named():
    config = {k: v for k, v in GCP_BASE.items() if k != "gcp:project"}
    with pytest.raises(ConfigError, match="gcp:project is required"):
        run_main(config)


# --- the project file and the configuration reference agree with the model ---------------

PULUMI_TYPES = {"string": str, "integer": int, "boolean": bool, "array": (list, tuple)}


def _declared() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((REPO / "Pulumi.yaml").read_text())["config"]


def test_every_key_of_the_model_is_declared_in_pulumi_yaml_and_back():
    assert set(_declared()) == set(all_keys())


def test_declared_defaults_equal_the_models_defaults_or_say_unset():
    for key, declaration in _declared().items():
        if key in REQUIRED_KEYS:
            continue
        assert declaration["default"] == declared_default(key), key
        model, field_name = all_keys()[key]
        if key in UNSET_VALUES:
            assert model.model_fields[field_name].default is None, key


def test_declared_types_match_the_model():
    for key, declaration in _declared().items():
        if "type" not in declaration:
            continue
        model, field_name = all_keys()[key]
        field = model.model_fields[field_name]
        default = None if field.is_required() else field.get_default(call_default_factory=True)
        if default is not None:
            assert isinstance(default, PULUMI_TYPES[declaration["type"]]), key


def test_declared_defaults_have_the_declared_type():
    # The Pulumi CLI refuses a project file whose default does not match its key's type.
    for key, declaration in _declared().items():
        if "type" in declaration and "default" in declaration:
            default = declaration["default"]
            assert isinstance(default, PULUMI_TYPES[declaration["type"]]), key
            assert declaration["type"] == "boolean" or not isinstance(default, bool), key


def test_only_cloud_is_declared_without_a_default():
    # The Pulumi CLI refuses to run a stack that leaves out a key declared without a default.
    assert [key for key, d in _declared().items() if "default" not in d] == list(REQUIRED_KEYS)


@pytest.mark.parametrize("stack_file", ["Pulumi.aws.yaml", "Pulumi.gcp.yaml"])
def test_the_defaults_the_cli_fills_in_change_nothing(stack_file: str):
    """Pulumi hands the program every declared default, cloud-specific ones included: the
    parsed configuration must be the one the stack file alone gives."""
    values = yaml.safe_load((REPO / stack_file).read_text())["config"]
    merged = as_the_cli_merges_it(values)
    assert len(merged) > len(values)

    def parsed(config: dict[str, Any]) -> dict[str, Any]:
        cloud = config["kappa:cloud"]
        return StackConfig.parse(
            {k.removeprefix("kappa:"): v for k, v in config.items() if k.startswith("kappa:")},
            region=config[f"{cloud}:region"],
            project=config.get("gcp:project"),
            stack="t",
        ).model_dump()

    assert parsed(merged) == parsed(values)


def test_a_stack_without_a_cloud_is_refused_by_the_cli():
    with pytest.raises(MissingStackConfig, match="cloud"):
        run_main({"aws:region": "eu-west-1"})


def test_the_kinesis_reader_is_refused_on_gcp():
    with pytest.raises(ConfigError, match="brokerReader applies to aws stacks only"):
        run_main({**GCP_BASE, "kappa:brokerReader": "emr-connector"})


def test_a_permissions_boundary_is_for_aws_roles_only():
    boundary = "arn:aws:iam::123456789012:policy/team-boundary"
    assert parse(permissionsBoundary=boundary).general.permissions_boundary == boundary
    with pytest.raises(ConfigError, match="permissionsBoundary applies to aws stacks only"):
        run_main({**GCP_BASE, "kappa:permissionsBoundary": boundary})


def test_on_gcp_ids_are_remembered_past_the_ack_deadline_after_which_pub_sub_redelivers():
    """A crashed job's pulled messages come back once their ack deadline has passed
    (https://cloud.google.com/pubsub/docs/lease-management): the job must still know them."""
    short = {"kappa:pipelineWatermarkSeconds": 30, "kappa:pipelineTriggerSeconds": 60}
    with pytest.raises(ConfigError) as refused:
        run_main({**GCP_BASE, **short})
    assert "kappa:pipelineDeduplicationSeconds: got 0" in str(refused.value)
    assert "ack deadline (120 s for a 60 s trigger)" in str(refused.value)
    config = parse("gcp", pipelineWatermarkSeconds=30, pipelineDeduplicationSeconds=120)
    assert config.pipeline.deduplication_seconds == 120
    # Kinesis re-reads from the checkpoint's offsets: no redelivery to outlast.
    assert parse("aws", pipelineWatermarkSeconds=30).pipeline.watermark_seconds == 30


def test_a_cloud_only_key_set_to_another_value_is_still_refused_on_the_other_cloud():
    with pytest.raises(ConfigError, match="brokerMaxDeliveryAttempts applies to gcp"):
        run_main({**AWS_BASE, "kappa:brokerMaxDeliveryAttempts": 20})


def test_unset_values_read_as_not_set():
    config = parse(
        "aws",
        environment="prod",
        deletionProtection="auto",
        clusterTaskTypes="[]",
        brokerShards="0",
        networkVpcId="",
    )
    assert config.deletion_protection is True
    assert config.task_types == parse("aws").task_types
    assert config.broker.shards is None
    assert not config.network.bring_your_own


def reference_row(key: str, declaration: dict[str, Any]) -> str:
    """The configuration table's row for a key (docs/configuration.md), from its Pulumi.yaml
    declaration."""
    kind = declaration.get("type", "object")
    kind = "array of string" if kind == "array" else kind
    if "default" not in declaration:
        default = "required"
    elif declaration["default"] == "":
        default = "(empty)"
    else:
        default = f"`{_flow(declaration['default'])}`"
    return f"| `{key}` | {kind} | {default} | {declaration['description']} |"


def _flow(value: Any) -> str:
    """A value as YAML's flow style writes it in a stack file: dev, 30, false, [v1], {}."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(_flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def test_the_configuration_reference_table_is_the_project_file():
    """The configuration reference (docs/configuration.md, linked from the README's map)."""
    reference = (REPO / "docs" / "configuration.md").read_text().splitlines()
    rows = [line for line in reference if line.startswith("| `")]
    wanted = [reference_row(key, d) for key, d in _declared().items()]
    assert [row for row in rows if row in wanted] == wanted


@pytest.mark.parametrize("stack_file", ["Pulumi.aws.yaml", "Pulumi.gcp.yaml"])
def test_stack_files_are_valid(stack_file: str):
    values = yaml.safe_load((REPO / stack_file).read_text())["config"]
    cloud = values["kappa:cloud"]
    parsed = StackConfig.parse(
        {k.removeprefix("kappa:"): v for k, v in values.items() if k.startswith("kappa:")},
        region=values[f"{cloud}:region"],
        project=values.get("gcp:project"),
        stack=stack_file.split(".")[1],
    )
    assert parsed.cloud == cloud
