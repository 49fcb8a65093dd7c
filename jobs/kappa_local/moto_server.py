"""moto's server, with Kinesis resharding made to behave as Kinesis does.

`python -m kappa_local.moto_server -H HOST -p PORT` is `python -m moto.server` (moto 5.2)
with two corrections to its Kinesis fake, without which a shard split loses events:

- moto routes a record to the first shard whose hash range holds its key, closed or not, so
  after a split every record still lands in the closed parent (and a reader that finished
  the parent never sees it). Kinesis routes only to open shards: here too.
- moto's split moves the parent's records into the children, with new sequence numbers.
  Kinesis keeps them in the closed parent until retention ends, and the children start
  empty (https://docs.aws.amazon.com/streams/latest/dev/kinesis-using-sdk-java-after-resharding.html):
  here too.

Both replace moto internals (pinned in requirements-dev.txt); the e2e test with a split
fails loudly if a moto upgrade changes them.
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from typing import Any

from moto.kinesis.models import Stream
from moto.server import main

_moto_split_shard = Stream.split_shard


def _shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
    if not isinstance(partition_key, str) or len(partition_key) > 256:
        from moto.kinesis.exceptions import InvalidArgumentError

        raise InvalidArgumentError("partition_key")
    if explicit_hash_key:
        key = int(explicit_hash_key)
    else:
        # Kinesis maps a partition key to a hash key by MD5 (not a security use).
        digest = hashlib.md5(partition_key.encode("utf-8"), usedforsecurity=False)
        key = int(digest.hexdigest(), 16)
    for shard in self.shards.values():
        if shard.is_open and shard.starting_hash <= key <= shard.ending_hash:
            return shard
    return None


def _split_keeping_records(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
    parent = self.shards[shard_to_split]
    kept = OrderedDict(parent.records)
    _moto_split_shard(self, shard_to_split, new_starting_hash_key)
    for shard in self.shards.values():
        if shard.parent == shard_to_split:
            shard.records = OrderedDict()
    parent.records = kept


Stream.get_shard_for_key = _shard_for_key  # type: ignore[method-assign]
Stream.split_shard = _split_keeping_records  # type: ignore[method-assign]

if __name__ == "__main__":
    main(sys.argv[1:])
