"""The configuration is validated in one pass: every problem of every kind in one run.

A stack's owner fixes a configuration from one `pulumi up`: a key's own value, keys of the
other cloud, the provider's region, `aws:assumeRoles` and the rules over several keys are all
reported together, and a rule is never run over a value that was already refused.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import ConfigError, StackConfig
from tests.infra.mocks import Recording
from tests.infra.program import GCP_BASE, run_main


def problems_of(config: dict[str, Any]) -> list[str]:
    recording = Recording()
    with pytest.raises(ConfigError) as refused:
        run_main(config, recording=recording)
    assert len(recording) == 0
    return refused.value.problems


def named(problems: list[str], start: str) -> list[str]:
    return [line for line in problems if line.startswith(start)]


def keys_named(problems: list[str]) -> list[str]:
    """The project key each problem names, in order (the provider's keys left out)."""
    return [match[1] for line in problems if (match := re.match(r"kappa:(\w+)", line))]


def parse(values: dict[str, Any], region: str | None = "eu-west-1") -> list[str]:
    with pytest.raises(ConfigError) as refused:
        StackConfig.parse(values, region=region, stack="t")
    return refused.value.problems


def test_faults_in_every_section_and_of_every_kind_are_reported_together():
    problems = problems_of(
        {
            "kappa:cloud": "aws",  # and no aws:region
            "aws:assumeRoles": [{"roleArn": "deploy"}],
            # 0, not 2: 2 passes the key's own bound (1) and fails only aws's (24), a rule.
            "kappa:brokerRetentionHours": 0,
            "kappa:clusterTaskTypes": ["m6i.xlarge"],  # one type for a spot fleet
            "kappa:networkCidr": "8.8.8.0/24",
            "kappa:pipelineVersions": ["v1", "v2"],  # and no live version
            "kappa:clusterTaskType": ["m6a.xlarge"],
        }
    )
    expected = {
        "kappa:brokerRetentionHours: got '0';": "greater than or equal to 1",
        "kappa:clusterTaskTypes: got ['m6i.xlarge'];": "3 to 30 instance types",
        "kappa:networkCidr: got '8.8.8.0/24';": "private IPv4 range",
        "kappa:pipelineLiveVersion is required": "name the one readers use",
        "kappa:clusterTaskType is not a key": "did you mean kappa:clusterTaskTypes?",
        "aws:region is required": "pulumi config set aws:region",
        "aws:assumeRoles[0].roleArn: got 'deploy';": "expected an IAM role ARN",
    }
    for start, says in expected.items():
        (line,) = named(problems, start)
        assert says in line, line
    assert len(problems) == len(expected), problems


def test_one_task_type_and_two_hours_of_retention_on_aws_are_reported_together():
    """The case the one-pass validation was asked for: both are rules of the aws stack (2 h
    passes the key's own bound), and the first refused must not hide the second."""
    problems = problems_of(
        {
            "kappa:cloud": "aws",
            "aws:region": "eu-west-1",
            "kappa:clusterTaskTypes": ["m6i.xlarge"],
            "kappa:brokerRetentionHours": 2,
        }
    )
    assert sorted(keys_named(problems)) == ["brokerRetentionHours", "clusterTaskTypes"]
    assert len(problems) == 2, problems
    (retention,) = named(problems, "kappa:brokerRetentionHours: got 2;")
    assert "aws allows 24 to 8760" in retention
    (task_types,) = named(problems, "kappa:clusterTaskTypes: got ['m6i.xlarge'];")
    assert "3 to 30 instance types" in task_types


def test_a_gcp_stack_hears_of_its_field_errors_region_project_and_rules_together():
    problems = problems_of(
        {
            "kappa:cloud": "gcp",  # and no gcp:region nor gcp:project
            "kappa:clusterCoreCount": 0,  # refused, so not judged again as under Dataproc's 2
            "kappa:clusterTaskTypes": ["n2-standard-4", "n2-standard-8"],
            "kappa:brokerReader": "emr-connector",
            "kappa:servingMinNodes": 4,
            "kappa:servingMaxNodes": 2,
        }
    )
    assert keys_named(problems) == [
        "clusterCoreCount",
        "brokerReader",
        "clusterTaskTypes",
        "servingMinNodes",
    ]
    assert named(problems, "gcp:region is required")
    assert named(problems, "gcp:project is required")
    assert len(problems) == 6, problems


def test_a_rule_over_a_refused_value_is_skipped_rather_than_judge_its_default():
    """clusterTaskMax 2000 is refused; judging clusterTaskMin against the default of 4 it
    leaves would add a second, wrong problem."""
    assert parse({"cloud": "aws", "clusterTaskMin": 5, "clusterTaskMax": 2000}) == [
        "kappa:clusterTaskMax: got 2000; Input should be less than or equal to 1000"
    ]


def test_a_refused_region_skips_only_the_rules_that_read_the_region():
    wrong_form = parse({"cloud": "aws", "kmsKey": "alias/mine"}, region=None)
    assert len(named(wrong_form, "kappa:kmsKey: got 'alias/mine'; expected a key of")) == 1
    assert len(named(wrong_form, "aws:region is required")) == 1
    elsewhere = "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c"
    assert parse({"cloud": "aws", "kmsKey": elsewhere}, region="Ireland") == [
        "aws:region: got 'Ireland'; expected a region name like us-east-1"
    ]


def test_without_a_valid_cloud_the_rules_that_need_none_still_run():
    problems = parse(
        {
            "cloud": "azure",
            "archiveColdAfterDays": 90,
            "archiveArchiveAfterDays": 60,
            "pipelineStartingPosition": "yesterday",
            "tags": {"Team": "data"},  # which rules apply depends on the cloud: not judged
        }
    )
    assert keys_named(problems) == [
        "cloud",
        "archiveArchiveAfterDays",
        "pipelineStartingPosition",
    ]


def test_a_key_of_the_other_cloud_is_named_even_when_its_value_is_refused():
    problems = problems_of({**GCP_BASE, "kappa:brokerReader": "kcl"})
    assert [line.split(";")[0] for line in problems] == [
        "kappa:brokerReader: got 'kcl'",
        "kappa:brokerReader applies to aws stacks only (cloud is gcp)",
    ]
