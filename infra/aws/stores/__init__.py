"""The serving stores built on AWS, by serving kind.

One module per store (`dynamodb.py`), registered in `STORES` under its kind; the shape every
store takes, and how to add one, is in `infra/stores.py`. A store's grants here are IAM
policy statements, added to the node role's policy by `infra.aws.iam.ClusterIdentity`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infra import stores
from infra.aws.stores.dynamodb import DynamoDbStore

if TYPE_CHECKING:
    from infra.aws.iam import NodeGrant
    from infra.aws.serving import ServingArgs

    Store = stores.Store[ServingArgs, NodeGrant]

CLOUD = "AWS"

# The serving kinds built on AWS; infra.config's built kinds must equal these keys.
STORES: dict[str, Store] = {"dynamodb": DynamoDbStore()}


def store_for(kind: str) -> Store:
    return stores.store_for(STORES, kind, CLOUD)
