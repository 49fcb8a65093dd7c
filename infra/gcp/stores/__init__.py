"""The serving stores built on Google Cloud, by serving kind.

One module per store (`bigtable.py`), registered in `STORES` under its kind; the shape every
store takes, and how to add one, is in `infra/stores.py`. A store's grants here are bindings
on the store's own resources (a table, a dataset), which `infra.gcp.iam.ClusterIdentity`
declares for the nodes' service account: nothing is granted on the project.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import stores
from infra.gcp.stores.bigtable import BigtableStore

if TYPE_CHECKING:
    from infra.gcp.iam import NodeGrant
    from infra.gcp.serving import ServingArgs

    Store = stores.Store[ServingArgs, NodeGrant]

CLOUD = "GCP"

# The serving kinds built on Google Cloud; infra.config's built kinds must equal these keys.
STORES: dict[str, Store] = {"bigtable": BigtableStore()}


def store_for(kind: str) -> Store:
    return stores.store_for(STORES, kind, CLOUD)
