"""The local flavours: which stand-ins run, what is created, and the spec the job gets.

Each flavour builds its pipeline spec with the job's own model (kappa.spec.PipelineSpec),
pointing at the stand-ins, so the local run and a cluster run the very same job with the
very same kind of document; and each reads back what the job wrote (serving rows, dead
letters, the archive, Spark's commit log) to check it.

One module per flavour, registered here by name (`python -m kappa_local run --flavour NAME`):

- aws (the default, `aws.py`): moto's server for Kinesis, S3 and DynamoDB.
- gcp (`gcp.py`): Google's Pub/Sub fake and Bigtable emulator; storage is local files.
- postgres (`postgres.py`): the aws flavour with Debian's PostgreSQL as the serving store.

What they share (ports, settings, the spec, reading back the job's files) is in `base.py`.
"""

from __future__ import annotations

from .aws import AwsFlavour
from .base import Flavour, Ports, Settings
from .gcp import GcpFlavour
from .postgres import PostgresFlavour

FLAVOURS: dict[str, type[Flavour]] = {f.name: f for f in (AwsFlavour, GcpFlavour, PostgresFlavour)}

__all__ = [
    "FLAVOURS",
    "AwsFlavour",
    "Flavour",
    "GcpFlavour",
    "Ports",
    "PostgresFlavour",
    "Settings",
]
