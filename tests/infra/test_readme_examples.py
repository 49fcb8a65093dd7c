"""The documentation's code examples (README.md and docs/) run as written, and declare what
the text says they do."""

from __future__ import annotations

import re
from pathlib import Path

from tests.infra.mocks import Recording, run_program

REPO = Path(__file__).resolve().parents[2]
KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
STREAM = "aws:kinesis/stream:Stream"


def python_examples() -> list[str]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(page.read_text() for page in pages)
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def run_example(code: str) -> Recording:
    def program() -> None:
        exec(code, {"__name__": "readme_example"})  # noqa: S102 - the docs' own text

    return run_program(program, {"aws:region": "eu-west-1"})


def test_the_composition_example_declares_a_lake_and_a_stream_on_the_callers_key():
    [example] = [code for code in python_examples() if "BrokerArgs" in code]

    recording = run_example(example)

    key_arn = recording.one(KEY).outputs["arn"]
    buckets = recording.of_type(BUCKET)
    assert len(buckets) == 5
    stream = recording.one(STREAM)
    assert (stream["encryptionType"], stream["kmsKeyId"]) == ("KMS", key_arn)
    # 4 MiB/s in with the default 25% headroom: five shards of 1 MiB/s.
    assert stream["shardCount"] == 5
    assert len(recording.of_type(KEY)) == 1, "the layers use the caller's key, not their own"
    # Layers taken alone are protected by default, as on GCP: the log and the data buckets.
    assert stream.protected
    protected = {b.name for b in buckets if b.protected}
    assert protected == {"events-archive", "events-checkpoints", "events-dead-letters"}
