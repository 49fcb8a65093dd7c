"""What every local flavour shares: the ports and settings of a run, the job's spec built
from a flavour's source, sink and storage, and reading back what the job wrote (dead letters,
the archive, Spark's checkpoint logs) from s3:// in moto or local paths.

A flavour subclasses `Flavour` in a module of its own and is registered in `FLAVOURS`
(`__init__.py`). One flavour object stands for one pipeline version; `sibling(version)` makes
another version's (a replay's) on the same stand-ins, stream and storage.
"""

from __future__ import annotations

import io
import json
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from kappa.spec import EventFormat, PipelineSpec, Storage, Windowing

from ..producer import Channel
from ..stand_ins import REPO, SetupError

# The name of everything a flavour creates: stream or topic, buckets, tables.
NAME = "kappa-local"


@dataclass(frozen=True)
class Ports:
    moto: int = 5000
    pubsub: int = 8085
    bigtable: int = 8086
    postgres: int = 5432


@dataclass(frozen=True)
class Settings:
    workdir: Path
    windowing: Windowing
    ports: Ports = field(default_factory=Ports)
    version: str = "v1"
    shards: int = 2
    event: EventFormat = field(default_factory=EventFormat)
    # At most this many records a micro-batch takes: per shard (Kinesis), per batch (Pub/Sub).
    # None: the job's defaults.
    batch_limit: int | None = None
    # Kinesis: this share of the partition keys goes to the first shard, the rest to the
    # second (producer.skewed_hash_key). None: Kinesis' own even MD5 routing.
    hot_share: float | None = None


def _visible(relative: str) -> bool:
    """Spark's rule: files and directories starting with _ or . are not data (_SUCCESS,
    _temporary, .spark-staging-*, checksums), but for partition directories (a=b)."""
    return not any(
        part.startswith(".") or (part.startswith("_") and "=" not in part)
        for part in relative.split("/")
    )


class Files:
    """What the job wrote, read back: s3:// in moto or local paths."""

    def __init__(self, s3: Any = None) -> None:
        self._s3 = s3
        self._parquet_rows: dict[tuple[str, tuple[str, ...]], list[dict[str, Any]]] = {}
        self._immutable: dict[str, bytes] = {}

    def list(self, prefix: str) -> list[str]:
        """Every visible data file under a prefix, as full URIs (recursive)."""
        if prefix.startswith("s3://"):
            bucket, _, key = prefix.removeprefix("s3://").partition("/")
            base = key.rstrip("/") + "/"
            found = []
            for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=base
            ):
                for item in page.get("Contents", []):
                    relative = item["Key"][len(base) :]
                    if _visible(relative):
                        found.append(f"s3://{bucket}/{item['Key']}")
            return sorted(found)
        root = Path(prefix)
        if not root.is_dir():
            return []
        return sorted(
            str(p) for p in root.rglob("*") if p.is_file() and _visible(str(p.relative_to(root)))
        )

    def read(self, uri: str) -> bytes:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return Path(uri).read_bytes()

    def write(self, uri: str, data: bytes) -> None:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        Path(uri).write_bytes(data)

    def exists(self, uri: str) -> bool:
        if uri.startswith("s3://"):
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            return bool(self._s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount"))
        return Path(uri).exists()

    def json_lines(self, prefix: str) -> list[dict[str, Any]]:
        rows = []
        for uri in self.list(prefix):
            if uri.endswith(".json"):
                text = self.read(uri).decode("utf-8")
                rows += [json.loads(line) for line in text.splitlines() if line.strip()]
        return rows

    def read_once(self, uri: str) -> bytes:
        """A file that never changes once written (Spark's offset log entries), read once."""
        if uri not in self._immutable:
            self._immutable[uri] = self.read(uri)
        return self._immutable[uri]

    def parquet_rows(self, prefix: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        """These columns of every row of the Parquet files under a prefix (partition columns,
        which live in directory names, are not among them)."""
        import pyarrow.parquet as pq

        rows: list[dict[str, Any]] = []
        current = [u for u in self.list(prefix) if u.endswith(".parquet")]
        # A file never changes once written (a replayed batch writes new names), so each is
        # read once; files of overwritten partitions drop out of the listing.
        for uri in current:
            if (uri, columns) not in self._parquet_rows:
                table = pq.read_table(io.BytesIO(self.read(uri)), columns=list(columns))
                self._parquet_rows[uri, columns] = table.to_pylist()
            rows += self._parquet_rows[uri, columns]
        return rows


class Flavour:
    name: ClassVar[str]
    stand_ins: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The first version's logs (and the stand-ins') at the top, a replay's beside them.
        self.logs = settings.workdir / "logs"
        if settings.version != Settings.version:
            self.logs = self.logs / settings.version
        self.files = Files()
        self._spec: PipelineSpec | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, stack: ExitStack) -> None:
        raise NotImplementedError

    def provision(self) -> None:
        """Create the stream or topic and the storage, then this version's own resources."""
        self.provision_shared()
        self.provision_version()

    def provision_shared(self) -> None:
        raise NotImplementedError

    def provision_version(self) -> None:
        """What a pipeline version has of its own: the serving table (and on Pub/Sub its
        subscription)."""
        raise NotImplementedError

    def sibling(self, version: str) -> Flavour:
        """The flavour of another pipeline version (a replay) on the same stand-ins, stream and
        storage, with its own spec, checkpoint, outputs and serving table. Its resources are
        made by its provision_version()."""
        other = type(self)(replace(self.settings, version=version))
        other.adopt(self)
        return other

    def adopt(self, started: Flavour) -> None:
        """Take over the connections of a started flavour (same stand-ins)."""
        self.files = started.files

    # -- the job ------------------------------------------------------------------------------
    def spec(self) -> PipelineSpec:
        if self._spec is None:
            self._spec = PipelineSpec(
                pipeline_version=self.settings.version,
                source=self._source(),
                starting_position="earliest",
                event=self.settings.event,
                windowing=self.settings.windowing,
                storage=self._storage(),
                sink=self._sink(),
            )
        return self._spec

    def _source(self) -> Any:
        raise NotImplementedError

    def _sink(self) -> Any:
        raise NotImplementedError

    def _storage(self) -> Storage:
        raise NotImplementedError

    @property
    def spec_uri(self) -> str:
        raise NotImplementedError

    @property
    def stop_marker_uri(self) -> str:
        return f"{self.spec().storage.checkpoint_uri}/_control/stop-{self.settings.version}"

    def publish_spec(self) -> str:
        self.files.write(self.spec_uri, self.spec().to_json().encode("utf-8"))
        return self.spec_uri

    def request_stop(self) -> None:
        self.files.write(self.stop_marker_uri, b"stop\n")

    def job_env(self) -> dict[str, str]:
        return {}

    def spark_defaults(self) -> dict[str, str]:
        return {
            # Two cores: Spark's UI and its 200 default shuffle partitions are only overhead.
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.driver.memory": "1g",
            "spark.jars.ivy": str(REPO / ".local" / "ivy"),
        }

    def channel(self) -> Channel:
        raise NotImplementedError

    # -- reading back what the job wrote ------------------------------------------------------
    def serving_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.files.json_lines(self.spec().dead_letter_location)

    def archived(self) -> list[dict[str, Any]]:
        """Every archived row: the event id (None for a malformed record), whether it was
        late, the malformed record's error, the payload and the record's identity."""
        from kappa.events import ERROR, LATE, PAYLOAD, RECORD_ID

        id_field = self.settings.event.id_field
        columns = (id_field, LATE, ERROR, PAYLOAD, RECORD_ID)
        return [
            {
                "event_id": row[id_field],
                "late": row[LATE],
                "error": row[ERROR],
                "payload": row[PAYLOAD],
                "record_id": row[RECORD_ID],
            }
            for row in self.files.parquet_rows(self.spec().archive_location, columns)
        ]

    def _logged(self, log: str) -> dict[int, str]:
        """Batch id -> file of one of Spark's checkpoint logs ("offsets" or "commits")."""
        files = self.files.list(f"{self.spec().checkpoint_location}/{log}")
        return {int(name): u for u in files if (name := u.rsplit("/", 1)[-1]).isdigit()}

    def committed_batches(self) -> set[int]:
        """Batch ids in Spark's commit log: the batches that are done for good."""
        return set(self._logged("commits"))

    def batch_in_flight(self) -> int | None:
        """The batch Spark has logged the offsets of (its write-ahead log) but not committed:
        the one being read and written right now, or None."""
        latest = self.last_planned_batch()
        return None if latest is None or latest in self.committed_batches() else latest

    def last_planned_batch(self) -> int | None:
        return max(self._logged("offsets"), default=None)

    def carries_events(self, batch: int) -> bool:
        """Whether a logged batch reads anything: its source offset differs from the batch
        before's. Spark also runs batches without input: the first of a query may have none
        (a Kinesis reader that saw no record yet), and a batch that moved the deduplication's
        watermark is followed by one that only evicts state, when no input waits."""
        logged = self._logged("offsets")
        if batch not in logged:
            return False
        offset = self._source_offset(logged[batch])
        if batch - 1 in logged:
            return offset != self._source_offset(logged[batch - 1])
        return self._first_offset_reads(offset)

    def _first_offset_reads(self, offset: Any) -> bool:
        """Whether a query's first batch, ending at this offset, reads anything."""
        return offset is not None

    def last_source_offset(self) -> Any:
        """The source's end offset of the last batch Spark logged (e.g. Kinesis positions)."""
        logged = self._logged("offsets")
        return self._source_offset(logged[max(logged)]) if logged else None

    def _source_offset(self, uri: str) -> Any:
        """An offset log entry: a "v1" line, the batch's metadata, the source's offset."""
        lines = self.files.read_once(uri).decode("utf-8").splitlines()
        return json.loads(lines[2]) if len(lines) > 2 else None

    def query_started(self) -> bool:
        """Spark writes the checkpoint's metadata file when the query starts."""
        return self.files.exists(f"{self.spec().checkpoint_location}/metadata")

    def ports_used(self) -> tuple[int, ...]:
        raise NotImplementedError

    def shard_records(self) -> dict[str, int]:
        """Records per shard of the stream (a broker without shards: none)."""
        return {}

    def split_shard(self) -> str:
        raise SetupError(f"the {self.name} flavour's broker has no shards to split")

    def locations(self) -> list[tuple[str, str]]:
        spec = self.spec()
        return [
            ("archive", spec.archive_location),
            ("dead letters", spec.dead_letter_location),
            ("checkpoint", spec.checkpoint_location),
            ("serving table", spec.serving_table),
        ]
