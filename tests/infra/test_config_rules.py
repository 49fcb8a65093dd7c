"""The rules over several keys declare the keys they read, and read no other.

The one-pass validation skips a rule that reads a refused value, by its declaration: a rule
that read a key it did not declare would judge a default the stack never asked for, and one
that declared a key it never reads would be skipped for nothing. So each rule runs here over
views of a stack that note every key read, and the notes must be its declaration.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from pydantic import BaseModel

from infra.config import SECTIONS, ConfigError, StackConfig
from infra.config.checks import RULES
from infra.config.checks.rule import Rule

SUBNET = "projects/acme-net/regions/europe-west1/subnetworks/data"
# Values each section accepts, chosen so that every rule finds a problem in one of them and
# takes its every branch.
VIEWS: list[dict[str, Any]] = [
    {"cloud": "aws"},
    {"cloud": "gcp"},
    {
        "cloud": "aws",
        "brokerRetentionHours": 12,
        "brokerMode": "on_demand",
        "brokerShards": 4,
        "clusterIdleTimeoutMinutes": 20000,
        "clusterRelease": "emr-7.1.0",
        "clusterMasterType": "n2-standard-4",
        "clusterCoreType": "large",
        "clusterTaskTypes": ["m6i.xlarge", "m7g.2xlarge", "m7g.2xlarge", "Large"],
        "clusterTaskCapacity": "preemptible",
        "clusterTaskMin": 5,
        "clusterTaskMax": 2,
        "servingKind": "bigtable",
        "servingMinNodes": 4,
        "servingMaxNodes": 2,
        "networkVpcId": "my-vpc",
        "networkEgress": "nat",
        "networkCidr": "8.8.8.0/24",
        "kmsKey": "alias/mine",
        "tags": {"aws:owner": "me"},
        "archiveColdAfterDays": 90,
        "archiveArchiveAfterDays": 100,
        "archiveExpireAfterDays": 50,
        "pipelineVersions": ["v1", "V2", "v1"],
        "pipelineLiveVersion": "v3",
        "pipelineStartingPosition": "yesterday",
        "eventValueFields": ["key"],
    },
    {
        "cloud": "aws",
        "clusterTaskTypes": ["m6i.xlarge"],
        "networkSubnetIds": ["subnet-x"],
        "kmsKey": "arn:aws:kms:us-east-1:123456789012:key/0f1e2d3c",
        "pipelineVersions": ["v1", "v2"],
        "pipelineStartingPosition": "2026-01-01T00:00:00Z",
    },
    {
        "cloud": "gcp",
        "clusterCoreCount": 1,
        "clusterTaskTypes": ["n2-standard-4", "n2-standard-8"],
        "servingKind": "bigquery",
        "servingMaxNodes": 20,
        "servingZone": "us-central1-a",
        "networkVpcId": "shared",
        "networkSubnetIds": [SUBNET, "other"],
        "kmsKey": "projects/sec/locations/us-east1/keyRings/r/cryptoKeys/k",
        "tags": {"Team": "data", **{f"team-{i}": "data" for i in range(30)}},
        "pipelineWatermarkSeconds": 30,
        "pipelineTriggerSeconds": 60,
    },
]


def view(values: dict[str, Any]) -> StackConfig:
    """A stack of these values as the rules see it, before they judge it."""
    sections = {
        name: model.model_validate({k: v for k, v in values.items() if k in _keys(model)})
        for name, model in SECTIONS.items()
    }
    region = "europe-west1" if values["cloud"] == "gcp" else "eu-west-1"
    return StackConfig.model_validate(
        {"cloud": values["cloud"], "region": region, "project": None, "stack": "t", **sections}
    )


def _keys(model: type[BaseModel]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


class _Noting:
    """A stack, or one of its sections, that notes each key read through it: a section's
    fields by their key, the cloud and the region; properties are followed into."""

    def __init__(self, of: BaseModel, noted: set[str]):
        self._of, self._noted = of, noted

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(type(self._of), name, None)
        if isinstance(attribute, property) and attribute.fget is not None:
            return attribute.fget(self)
        value = getattr(self._of, name)
        if isinstance(self._of, StackConfig):
            self._noted.update({name} & {"cloud", "region"})
        else:
            field = type(self._of).model_fields[name]
            self._noted.add(field.alias or name)
        return _Noting(value, self._noted) if isinstance(value, BaseModel) else value


def keys_read(rule: Rule, values: dict[str, Any]) -> set[str]:
    noted: set[str] = set()
    rule(cast(StackConfig, _Noting(view(values), noted)))
    return noted


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_a_rule_reads_exactly_the_keys_it_declares(rule: Rule):
    read = [keys_read(rule, values) for values in VIEWS]
    for values, keys in zip(VIEWS, read, strict=True):
        assert keys <= rule.reads, (values, keys - rule.reads)
    assert set().union(*read) == rule.reads


def test_the_views_make_every_rule_find_a_problem():
    """Else a branch that reads more might never run above."""
    quiet = [rule.name for rule in RULES if not any(rule(view(values)) for values in VIEWS)]
    assert quiet == []


def test_rule_names_are_unique():
    assert len({rule.name for rule in RULES}) == len(RULES)


def test_every_rule_that_does_not_read_the_cloud_runs_without_one():
    """Without a valid cloud, the view the rules judge has none: the rules that do not read
    it still run, over the other keys at their defaults."""
    assert any("cloud" not in rule.reads for rule in RULES)
    with pytest.raises(ConfigError) as refused:
        StackConfig.parse({"cloud": "azure"}, region="eu-west-1", stack="t")
    assert refused.value.problems == ["kappa:cloud: got 'azure'; Input should be 'aws' or 'gcp'"]
