"""Serving stores: the one shape every store takes, on both clouds.

A serving store holds one table of aggregates per pipeline version (the Kappa replay target).
Each cloud keeps its stores in a registry, `STORES` in `infra/<cloud>/stores/__init__.py`,
keyed by the serving kind; `Serving` (`infra/<cloud>/serving.py`) looks up
`ServingArgs.kind` there and asks the store for everything kind-specific, so nothing outside
a store's module names DynamoDB or Bigtable. A store is an object with two methods and one
attribute (`Store` below):

- `declare(scope, tables, args)` declares the store's resources as children of the Serving
  component and returns a `DeclaredStore`: each version's table (`StoreTable`: its name,
  and the id the grants name, an ARN on AWS), the node's grants (AWS: IAM policy statements
  for the node role; GCP: bindings on the store's own resources for the node service account,
  declared by ClusterIdentity), and the outputs Serving registers besides kind and tables.
- `spec_sink(context)` builds the pipeline spec's sink section (a `kappa.spec` sink model)
  from the stack's values and the store's outputs, resolved (`SinkContext`).
- `services`: what the platform opens for the store before declaring it. GCP: the APIs
  `infra/gcp/services.py` enables; AWS: the gateway endpoints `infra/aws/network.py` adds to
  the network the stack creates.

The job side mirrors it: `jobs/kappa/sinks/<kind>.py` writes the store, registered in
`kappa.sinks.SINKS` under the same kind, with its sink model in `kappa.spec.Sink`.

How to add a store (say Cloud SQL on GCP): one module per side, plus its registration.
1. `infra/gcp/stores/cloudsql.py`: a class with `declare`, `spec_sink` and `services`.
   Settings of its own are fields of that cloud's `ServingArgs` (checked there) fed from
   config keys.
2. Register it: `"cloudsql": CloudSqlStore()` in `STORES` of `infra/gcp/stores/__init__.py`.
   The config needs nothing more: a stack accepts a kind of `SERVING_KINDS` (the
   architecture's stores, `infra/config/clouds.py`) once its cloud's registry holds it.
3. `kappa.spec`: its sink model (`kind: Literal["cloudsql"]`), added to the `Sink` union. The
   models stay there rather than beside their sinks: `infra` imports `kappa.spec`, which must
   not pull in Spark as the sink modules do, and pyright needs the union spelled out.
4. `jobs/kappa/sinks/cloudsql.py`: the sink (`prepare`; `upsert` keeping the row contract and
   the batch fence of `kappa.sinks.merge`, its rows handed over by
   `kappa.sinks.base.write_aggregates`) with a `from_spec` factory, registered in `SINKS`.
5. `tests/jobs/stores.py`: the store on a local server, in `LOCAL_STORES`, so the shared sink
   contract tests (tests/jobs/test_sinks.py) run against it.
6. The README's first table names each cloud's serving stores: move the kind out of "not
   built yet" there.
`tests/infra/test_stores.py` walks both registries and fails until every part is there: a
table per version, named as the job names it; grants reaching each table; a spec sink section
that validates as a `PipelineSpec` sink of the kind; a jobs sink for the kind. It also checks
that the config accepts exactly the registered kinds and that a platform opens what its store
names in `services`. tests/jobs/test_sinks.py fails for a jobs sink without a local store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import pulumi
from kappa.spec import Sink, versioned_table_name

ArgsT = TypeVar("ArgsT")
GrantT = TypeVar("GrantT")
ArgsT_contra = TypeVar("ArgsT_contra", contravariant=True)
GrantT_co = TypeVar("GrantT_co", covariant=True)
StoreT = TypeVar("StoreT")


@dataclass(frozen=True)
class VersionTable:
    """One version's table as Serving names it, whatever the store."""

    version: str
    resource_name: str  # the Pulumi resource
    # Fixed, not auto-named: the job derives it from the base name in its spec.
    table_name: str


@dataclass(frozen=True)
class StoreTable:
    """A declared version's table: its name (for the job and readers) and the id its grants
    name (an ARN on AWS, the table's resource id on GCP)."""

    name: pulumi.Output[str]
    id: pulumi.Output[str]


@dataclass(frozen=True)
class StoreScope:
    """Where a store declares its resources: as children of the Serving component."""

    name: str  # the component's name; the store's resource names derive from it
    parent: pulumi.Resource
    # The component's own options: what it waits for must reach the store's resources too.
    opts: pulumi.ResourceOptions | None = None


@dataclass(frozen=True)
class DeclaredStore(Generic[GrantT_co]):
    """What a store hands back to the platform once its resources are declared."""

    # pipeline version -> its table
    tables: Mapping[str, StoreTable]
    # What the cluster's nodes need to read the fence and write the rows of every table.
    grants: tuple[GrantT_co, ...]
    # Registered by Serving beside kind and tables, and resolved into SinkContext.outputs.
    outputs: Mapping[str, pulumi.Input[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class SinkContext:
    """What a spec's sink section is built from, all resolved."""

    table_base: str  # the job appends the pipeline version (kappa.spec.versioned_table_name)
    region: str
    project: str | None = None  # GCP
    ttl_days: int = 0  # 0 keeps rows forever
    outputs: Mapping[str, Any] = field(default_factory=dict)  # the DeclaredStore's, resolved


class Store(Protocol[ArgsT_contra, GrantT_co]):
    @property
    def services(self) -> tuple[str, ...]:
        """What the platform opens for the store before declaring it, in its cloud's terms.

        GCP: the APIs its resources and the job's sink call, which Services enables (Bigtable:
        its admin and data APIs). AWS: the services the nodes reach through a gateway endpoint
        of the network the stack creates (DynamoDB: "dynamodb"); a store the nodes reach
        another way names none.
        """
        ...

    def declare(
        self, scope: StoreScope, tables: Sequence[VersionTable], args: ArgsT_contra
    ) -> DeclaredStore[GrantT_co]:
        """Declare the store and one table per entry of `tables`, as children of the scope."""
        ...

    def spec_sink(self, context: SinkContext) -> Sink:
        """The pipeline spec's sink section for this store."""
        ...


def store_for(stores: Mapping[str, StoreT], kind: str, cloud: str) -> StoreT:
    """The store registered for `kind`, or an error naming the ones that are."""
    if kind not in stores:
        raise ValueError(
            f"serving kind {kind!r} is not built on {cloud}; built: {', '.join(sorted(stores))}"
        )
    return stores[kind]


class ServingComponent(pulumi.ComponentResource, Generic[ArgsT, GrantT]):
    """What `Serving` is on both clouds: the store of `kind`, one table per pipeline version.

    `tables` maps each version to its table's NAME, `table_ids` to the id grants name;
    `live_table` is the name readers use; `grants` go to ClusterIdentityArgs.serving_grants.
    """

    kind: str
    table_base: str
    tables: dict[str, pulumi.Output[str]]
    table_ids: dict[str, pulumi.Output[str]]
    live_table: pulumi.Output[str]
    grants: tuple[GrantT, ...]
    outputs: dict[str, pulumi.Input[Any]]

    def __init__(
        self,
        type_token: str,
        name: str,
        *,
        store: Store[ArgsT, GrantT],
        kind: str,
        table_base: str,
        versions: Sequence[str],
        live_version: str | None,
        args: ArgsT,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        live = live_version_of(versions, live_version)
        super().__init__(type_token, name, None, opts)
        self._store = store
        self.kind = kind
        # The stack name inside `name` (AWS) or the instance (GCP) keeps stacks' tables apart.
        self.table_base = table_base
        declared = store.declare(
            StoreScope(name=name, parent=self, opts=opts),
            [
                VersionTable(
                    version=version,
                    resource_name=f"{name}-{version}",
                    table_name=versioned_table_name(table_base, version),
                )
                for version in versions
            ],
            args,
        )
        if sorted(declared.tables) != sorted(versions):
            raise ValueError(
                f"serving kind {kind!r} declared tables for {sorted(declared.tables)}, "
                f"not for the versions {sorted(versions)}"
            )
        self.tables = {version: declared.tables[version].name for version in versions}
        self.table_ids = {version: declared.tables[version].id for version in versions}
        self.live_table = self.tables[live]
        self.grants = tuple(declared.grants)
        self.outputs = dict(declared.outputs)
        self.register_outputs(
            {
                "kind": self.kind,
                "tables": self.tables,
                "live_table": self.live_table,
                **self.outputs,
            }
        )

    def spec_sink(
        self, *, region: str, project: str | None = None, ttl_days: int = 0
    ) -> pulumi.Output[Sink]:
        """The spec's sink section, once the store's outputs are known."""
        store, base = self._store, self.table_base
        return pulumi.Output.from_input(dict(self.outputs)).apply(
            lambda outputs: store.spec_sink(
                SinkContext(
                    table_base=base,
                    region=region,
                    project=project,
                    ttl_days=ttl_days,
                    outputs=outputs,
                )
            )
        )


def live_version_of(versions: Sequence[str], live_version: str | None) -> str:
    """The version readers use: the one named, or the first when none is."""
    if not versions:
        raise ValueError("serving needs at least one pipeline version")
    live = versions[0] if live_version is None else live_version
    if live not in versions:
        raise ValueError(f"live_version {live!r} is not in {list(versions)}")
    return live
