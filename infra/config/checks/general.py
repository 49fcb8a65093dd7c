"""Rules over the whole stack's keys: tags the cloud accepts, a key from the stack's region."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from infra.config.checks.rule import reads
from infra.config.clouds import GCP_LABEL_PATTERN, GCP_LABEL_VALUE_PATTERN, KMS_KEY_PATTERN
from infra.config.keys import PROJECT

if TYPE_CHECKING:
    from infra.config.stack import StackConfig


@reads("cloud", "tags")
def tags_are_the_clouds(config: StackConfig) -> Iterator[str]:
    for key, value in config.general.tags.items():
        if config.cloud == "aws":
            if key.lower().startswith("aws:") or not 1 <= len(key) <= 128 or len(value) > 256:
                yield (
                    f"{PROJECT}:tags.{key}: AWS tags need a key of 1-128 characters not starting "
                    "with 'aws:' and a value of at most 256"
                )
        elif not re.match(GCP_LABEL_PATTERN, key) or not re.match(GCP_LABEL_VALUE_PATTERN, value):
            yield (
                f"{PROJECT}:tags.{key}: got {value!r}; GCP labels are lower-case letters, digits, "
                "'_' and '-', keys starting with a letter, at most 63 characters"
            )


@reads("cloud", "tags", "environment")
def dataproc_takes_32_labels(config: StackConfig) -> Iterator[str]:
    # A Dataproc cluster takes at most 32 labels (Cluster.labels,
    # https://cloud.google.com/dataproc/docs/reference/rest/v1/projects.regions.clusters), and
    # the gcp provider adds goog-pulumi-provisioned to the stack's own
    # (https://www.pulumi.com/registry/packages/gcp/how-to-guides/8-0-migration/).
    own = config.general.tags
    if config.cloud == "gcp" and len(config.tags) + 1 > 32:
        added = [key for key in config.tags if key not in own]
        yield (
            f"{PROJECT}:tags: got {len(own)} tags; a Dataproc cluster takes at "
            f"most 32 labels, the stack adds {len(added)} ({', '.join(added)}) and the gcp "
            f"provider 1 (goog-pulumi-provisioned): at most {31 - len(added)} of your own"
        )


@reads("cloud", "kmsKey")
def key_is_the_clouds(config: StackConfig) -> Iterator[str]:
    key, pattern = config.general.kms_key, KMS_KEY_PATTERN[config.cloud]
    if key and not re.match(pattern, key):
        yield f"{PROJECT}:kmsKey: got {key!r}; expected a key of the form {pattern}"


@reads("cloud", "kmsKey", "region")
def key_is_in_the_stacks_region(config: StackConfig) -> Iterator[str]:
    key, cloud = config.general.kms_key, config.cloud
    if not key or not re.match(KMS_KEY_PATTERN[cloud], key):
        return
    # A stream, bucket, table or disk takes a key from its own region only.
    location = key.split(":")[3] if cloud == "aws" else key.split("/")[3]
    if location != config.region:
        yield (
            f"{PROJECT}:kmsKey: got a key in {location!r}; the key must be in the stack's "
            f"region ({config.region})"
        )


RULES = (
    tags_are_the_clouds,
    dataproc_takes_32_labels,
    key_is_the_clouds,
    key_is_in_the_stacks_region,
)
