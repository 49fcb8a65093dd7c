"""Every serving store registered on either cloud has all of its parts.

The walk goes over both clouds' STORES (infra/stores.py has the shape and how to add one). For
each kind it declares the Serving layer with two pipeline versions and a ClusterIdentity given
the store's grants, all under mocks, and requires: a table per version, named as the job will
name it; grants that reach every one of those tables and nothing else; a spec sink section that
validates as a PipelineSpec sink of the kind; and a jobs sink registered for the kind (whose
contract tests, tests/jobs/test_sinks.py, then run on it). The config accepts exactly the
registered kinds, and a platform opens what its store names in `services`. The stand-in stores
at the end show that a kind missing any part fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pytest
from kappa.sinks import SINKS
from kappa.spec import (
    BigtableSink,
    DynamoDbSink,
    FilesSource,
    PipelineSpec,
    Sink,
    SpecError,
    Storage,
)

import infra.aws.stores
import infra.gcp.stores
from infra.aws import iam as aws_iam
from infra.aws import serving as aws_serving
from infra.config import CLOUD_DEFAULTS, SERVING_KINDS, ConfigError, StackConfig
from infra.gcp import iam as gcp_iam
from infra.gcp import serving as gcp_serving
from infra.stores import DeclaredStore, ServingComponent, SinkContext, StoreScope, StoreTable
from tests.infra.mocks import ACCOUNT_ID, Recording, resolve, run_program
from tests.infra.program import AWS_BASE, run_main

NAME = "kappa-test"
VERSIONS = ("v1", "v2")
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT_ID}:key/stores-test"
STREAM = f"arn:aws:kinesis:eu-west-1:{ACCOUNT_ID}:stream/stores-test"
REGIONS = {"aws": "eu-west-1", "gcp": "europe-west1"}
PROJECT = "acme-data"
REGISTRIES: dict[str, dict[str, Any]] = {
    "aws": infra.aws.stores.STORES,
    "gcp": infra.gcp.stores.STORES,
}


def registered() -> list[tuple[str, str]]:
    return [(cloud, kind) for cloud, stores in REGISTRIES.items() for kind in sorted(stores)]


@dataclass
class Walk:
    """One kind's Serving layer and the node grants it leads to, under mocks."""

    serving: ServingComponent[Any, Any]
    recording: Recording
    # What the grants add to a ClusterIdentity: AWS node policy statements (by Sid), GCP
    # binding resources.
    added_statements: list[dict[str, Any]] = field(default_factory=list)
    added_bindings: list[Any] = field(default_factory=list)


def declare_serving(cloud: str, kind: str) -> ServingComponent[Any, Any]:
    if cloud == "aws":
        return aws_serving.Serving(
            NAME, aws_serving.ServingArgs(kms_key_arn=KEY, versions=VERSIONS, kind=kind)
        )
    return gcp_serving.Serving(
        NAME,
        gcp_serving.ServingArgs(
            project=PROJECT, zone="europe-west1-b", versions=VERSIONS, kind=kind
        ),
    )


def declare_identity(cloud: str, name: str, grants: Sequence[Any]) -> None:
    if cloud == "aws":
        aws_iam.ClusterIdentity(
            name,
            aws_iam.ClusterIdentityArgs(
                stream_arn=STREAM,
                kms_key_arn=KEY,
                read_bucket_arns=["arn:aws:s3:::stores-artifacts"],
                write_bucket_arns=["arn:aws:s3:::stores-lake"],
                serving_grants=grants,
            ),
        )
    else:
        gcp_iam.ClusterIdentity(
            name, gcp_iam.ClusterIdentityArgs(project=PROJECT, serving_grants=grants)
        )


def walk(cloud: str, kind: str) -> Walk:
    built: list[ServingComponent[Any, Any]] = []

    def program() -> None:
        serving = declare_serving(cloud, kind)
        built.append(serving)
        declare_identity(cloud, "bare", ())
        declare_identity(cloud, "granted", serving.grants)

    recording = run_program(program)
    result = Walk(built[0], recording)
    if cloud == "aws":
        policies = {
            r.name: r.json("policy")["Statement"]
            for r in recording.of_type("aws:iam/rolePolicy:RolePolicy")
        }
        bare = {s["Sid"] for s in policies["bare-nodes"]}
        result.added_statements = [s for s in policies["granted-nodes"] if s["Sid"] not in bare]
    else:
        bare = {(r.type, r.name.removeprefix("bare")) for r in recording.children_of("::bare")}
        result.added_bindings = [
            r
            for r in recording.children_of("::granted")
            if (r.type, r.name.removeprefix("granted")) not in bare
        ]
    return result


def values_in(inputs: Any) -> set[str]:
    """Every string inside a resource's inputs."""
    if isinstance(inputs, str):
        return {inputs}
    if isinstance(inputs, Mapping):
        return {v for value in inputs.values() for v in values_in(value)}
    if isinstance(inputs, list | tuple):
        return {v for value in inputs for v in values_in(value)}
    return set()


def problems_of(cloud: str, kind: str) -> list[str]:
    """What the kind registered on `cloud` lacks; empty when it has every part."""
    try:
        found = walk(cloud, kind)
    except Exception as error:  # any failure to declare is the finding
        return [f"declaring it failed: {error}"]
    serving, recording = found.serving, found.recording
    problems: list[str] = []

    declared = recording.children_of(f"kappa:{cloud}:Serving::{NAME}")
    if not declared:
        problems.append("declares no resource under Serving")
    names = {version: resolve(serving.tables[version]) for version in VERSIONS}
    ids = {version: resolve(serving.table_ids[version]) for version in VERSIONS}
    for version in VERSIONS:
        expected = f"{serving.table_base}_{version}"
        if names[version] != expected:
            problems.append(f"{version}'s table is named {names[version]!r}, not {expected!r}")
        if not ids[version]:
            problems.append(f"{version}'s table has no id for its grants")

    if not serving.grants:
        problems.append("grants the nodes nothing")
    elif cloud == "aws":
        problems += aws_grant_problems(found.added_statements, ids)
    else:
        problems += gcp_grant_problems(found.added_bindings, names, ids, recording)

    try:
        sink = resolve(serving.spec_sink(region=REGIONS[cloud], project=PROJECT, ttl_days=3))
        spec = spec_with(sink, "v2")
    except (SpecError, ValueError, TypeError) as error:
        problems.append(f"its spec sink section is not a valid PipelineSpec sink: {error}")
    else:
        if spec.sink.kind != kind:
            problems.append(f"its spec sink section is of kind {spec.sink.kind!r}")
        if spec.serving_table != names["v2"]:
            problems.append(
                f"the job would write {spec.serving_table!r}, infra declared {names['v2']!r}"
            )
    if kind not in SINKS:
        problems.append("has no jobs sink in kappa.sinks.SINKS")
    return problems


def aws_grant_problems(statements: list[dict[str, Any]], ids: Mapping[str, str]) -> list[str]:
    if not statements:
        return ["adds no statement to the node policy"]
    problems = []
    granted: set[str] = set()
    for statement in statements:
        resources = statement.get("Resource") or []
        actions = statement.get("Action") or []
        if statement.get("Effect") != "Allow" or not resources or not actions:
            problems.append(f"statement {statement.get('Sid')!r} allows nothing")
        if "*" in resources or any(action.endswith("*") for action in actions):
            problems.append(f"statement {statement.get('Sid')!r} uses a wildcard")
        granted.update(resources)
    problems += [f"{v}'s table {i!r} is not granted" for v, i in ids.items() if i not in granted]
    return problems


def gcp_grant_problems(
    bindings: list[Any], names: Mapping[str, str], ids: Mapping[str, str], recording: Recording
) -> list[str]:
    if not bindings:
        return ["binds nothing for the node service account"]
    member = f"serviceAccount:{recording.named('granted-sa').outputs['email']}"
    problems = [
        f"binding {b.name} is not for the nodes' account"
        for b in bindings
        if b.get("member") != member
    ]
    bound = {value for binding in bindings for value in values_in(binding.inputs)}
    problems += [
        f"{version}'s table is not bound"
        for version in VERSIONS
        if not {names[version], ids[version]} & bound
    ]
    return problems


def spec_with(sink: Sink, version: str) -> PipelineSpec:
    """A spec carrying `sink`, round-tripped through JSON as the job reads it."""
    spec = PipelineSpec(
        pipeline_version=version,
        source=FilesSource(path="/tmp/in"),
        storage=Storage(archive_uri="a", dead_letter_uri="d", checkpoint_uri="c"),
        sink=sink,
    )
    return PipelineSpec.from_json(spec.to_json())


@pytest.mark.parametrize(("cloud", "kind"), registered())
def test_every_registered_store_declares_grants_builds_its_spec_and_has_a_sink(
    cloud: str, kind: str
):
    assert problems_of(cloud, kind) == []


def serving_kind_problems(cloud: str, kind: str) -> list[str]:
    """What the config says of `servingKind: kind` on `cloud`; empty when it accepts it."""
    try:
        StackConfig.parse(
            {"cloud": cloud, "servingKind": kind},
            region=REGIONS[cloud],
            project=PROJECT if cloud == "gcp" else None,
            stack="t",
        )
    except ConfigError as error:
        return [p for p in error.problems if p.startswith("kappa:servingKind")]
    return []


def kinds_of(cloud: str) -> tuple[str, ...]:
    return {str(c): kinds for c, kinds in SERVING_KINDS.items()}[cloud]


def test_the_config_and_the_registries_know_the_same_clouds():
    assert set(SERVING_KINDS) == set(REGISTRIES)


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_the_config_accepts_exactly_the_registered_kinds(cloud: str):
    accepted = {kind for kind in kinds_of(cloud) if not serving_kind_problems(cloud, kind)}
    assert accepted == set(REGISTRIES[cloud])
    default = {str(c): d["serving_kind"] for c, d in CLOUD_DEFAULTS.items()}[cloud]
    assert default in REGISTRIES[cloud]


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_kind_not_registered_is_refused_as_not_built_yet(cloud: str):
    unbuilt = next(kind for kind in kinds_of(cloud) if kind not in REGISTRIES[cloud])
    assert serving_kind_problems(cloud, unbuilt) == [
        f"kappa:servingKind: got {unbuilt!r}; not built yet; use {DEFAULTS[cloud]}"
    ]


def test_both_registries_name_their_cloud_when_a_kind_is_not_built():
    with pytest.raises(ValueError, match="'redshift' is not built on AWS; built: dynamodb"):
        infra.aws.stores.store_for("redshift")
    with pytest.raises(ValueError, match="'bigquery' is not built on GCP; built: bigtable"):
        infra.gcp.stores.store_for("bigquery")


# --- a kind missing a part fails the walk ----------------------------------------------------


class StandIn:
    """A real store with one of its parts broken, registered in its place."""

    def __init__(
        self,
        real: Any,
        *,
        grants: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda grants: grants,
        tables: Callable[[Mapping[str, StoreTable]], Mapping[str, StoreTable]] = dict,
        sink: Callable[[Sink], Sink] = lambda sink: sink,
        services: tuple[str, ...] | None = None,
    ) -> None:
        self.real, self.grants, self.tables, self.sink = real, grants, tables, sink
        self.services: tuple[str, ...] = real.services if services is None else services

    def declare(self, scope: StoreScope, tables: Sequence[Any], args: Any) -> DeclaredStore[Any]:
        declared = self.real.declare(scope, tables, args)
        return DeclaredStore(
            tables=self.tables(declared.tables),
            grants=self.grants(declared.grants),
            outputs=declared.outputs,
        )

    def spec_sink(self, context: SinkContext) -> Sink:
        return self.sink(self.real.spec_sink(context))


def problems_with(
    monkeypatch: pytest.MonkeyPatch, cloud: str, kind: str, store: StandIn
) -> list[str]:
    monkeypatch.setitem(REGISTRIES[cloud], kind, store)
    return problems_of(cloud, kind)


# Each cloud's default kind, a real store to break.
DEFAULTS = {str(cloud): defaults["serving_kind"] for cloud, defaults in CLOUD_DEFAULTS.items()}


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_that_grants_nothing_fails(monkeypatch: pytest.MonkeyPatch, cloud: str):
    real = REGISTRIES[cloud][DEFAULTS[cloud]]
    problems = problems_with(
        monkeypatch, cloud, DEFAULTS[cloud], StandIn(real, grants=lambda _: ())
    )
    assert "grants the nodes nothing" in problems


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_that_grants_one_versions_table_only_fails(
    monkeypatch: pytest.MonkeyPatch, cloud: str
):
    real = REGISTRIES[cloud][DEFAULTS[cloud]]
    if cloud == "aws":

        def first_table_only(grants: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple({**s, "Resource": s["Resource"][:1]} for s in grants)

        store = StandIn(real, grants=first_table_only)
    else:
        store = StandIn(real, grants=lambda grants: grants[:1])
    problems = problems_with(monkeypatch, cloud, DEFAULTS[cloud], store)
    assert any(p.startswith("v2's table") and "not" in p for p in problems), problems


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_that_skips_a_versions_table_fails(monkeypatch: pytest.MonkeyPatch, cloud: str):
    real = REGISTRIES[cloud][DEFAULTS[cloud]]
    store = StandIn(real, tables=lambda tables: {"v1": tables["v1"]})
    [problem] = problems_with(monkeypatch, cloud, DEFAULTS[cloud], store)
    assert problem.startswith("declaring it failed")
    assert "not for the versions" in problem


def another_kinds_sink(sink: Sink) -> Sink:
    if sink.kind == "dynamodb":
        return BigtableSink(project=PROJECT, instance="i", table=sink.table)
    return DynamoDbSink(table=sink.table, region="eu-west-1")


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_whose_spec_sink_is_of_another_kind_fails(
    monkeypatch: pytest.MonkeyPatch, cloud: str
):
    real = REGISTRIES[cloud][DEFAULTS[cloud]]
    store = StandIn(real, sink=another_kinds_sink)
    other = "bigtable" if DEFAULTS[cloud] == "dynamodb" else "dynamodb"
    problems = problems_with(monkeypatch, cloud, DEFAULTS[cloud], store)
    assert problems == [f"its spec sink section is of kind {other!r}"]


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_whose_spec_sink_is_not_a_sink_model_fails(
    monkeypatch: pytest.MonkeyPatch, cloud: str
):
    real = REGISTRIES[cloud][DEFAULTS[cloud]]
    store = StandIn(real, sink=lambda sink: {"kind": sink.kind})  # type: ignore[arg-type,return-value]
    [problem] = problems_with(monkeypatch, cloud, DEFAULTS[cloud], store)
    assert problem.startswith("its spec sink section is not a valid PipelineSpec sink")


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_a_store_without_a_jobs_sink_fails(monkeypatch: pytest.MonkeyPatch, cloud: str):
    monkeypatch.delitem(SINKS, DEFAULTS[cloud])
    assert problems_of(cloud, DEFAULTS[cloud]) == ["has no jobs sink in kappa.sinks.SINKS"]


@pytest.mark.parametrize("cloud", sorted(REGISTRIES))
def test_registering_a_store_is_what_makes_the_config_accept_its_kind(
    monkeypatch: pytest.MonkeyPatch, cloud: str
):
    unbuilt = next(kind for kind in kinds_of(cloud) if kind not in REGISTRIES[cloud])
    assert serving_kind_problems(cloud, unbuilt)
    monkeypatch.setitem(REGISTRIES[cloud], unbuilt, StandIn(REGISTRIES[cloud][DEFAULTS[cloud]]))
    assert serving_kind_problems(cloud, unbuilt) == []


def test_a_kind_the_cloud_does_not_offer_stays_refused_even_when_registered(
    monkeypatch: pytest.MonkeyPatch,
):
    """The config's vocabulary of kinds per cloud still holds: a registry cannot widen it."""
    monkeypatch.setitem(REGISTRIES["aws"], "bigtable", StandIn(REGISTRIES["aws"]["dynamodb"]))
    [problem] = serving_kind_problems("aws", "bigtable")
    assert "aws serves from one of ['dynamodb', 'rds', 'redshift']" in problem


def test_serving_tables_are_names_on_both_clouds():
    """Serving.tables means the same on AWS and GCP: version -> the table's name."""
    for cloud in REGISTRIES:
        found = walk(cloud, DEFAULTS[cloud])
        tables = {v: resolve(t) for v, t in found.serving.tables.items()}
        assert all(isinstance(t, pulumi.Output) for t in found.serving.tables.values())
        assert tables == {v: f"{found.serving.table_base}_{v}" for v in VERSIONS}


# --- what a store names in `services`, its platform opens --------------------------------


def gateway_endpoints(recording: Recording) -> set[str]:
    return {
        r["serviceName"].rsplit(".", 1)[1]
        for r in recording.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
        if r["vpcEndpointType"] == "Gateway"
    }


def test_the_aws_network_opens_the_gateway_endpoints_its_store_names(
    monkeypatch: pytest.MonkeyPatch,
):
    assert gateway_endpoints(run_main(AWS_BASE)) == {"s3", "dynamodb"}
    # A store the nodes reach without a gateway endpoint: the lake's S3 one stays.
    unreached = StandIn(REGISTRIES["aws"]["dynamodb"], services=())
    monkeypatch.setitem(REGISTRIES["aws"], "rds", unreached)
    assert gateway_endpoints(run_main({**AWS_BASE, "kappa:servingKind": "rds"})) == {"s3"}
