"""Small objects at a URI: s3:// (boto3), gs:// (google-cloud-storage) or a local path.

The job reads its spec, polls its stop marker and keeps the Pub/Sub reader's pulled batches
through this module. Spark's own writers (archive, dead letters) go through Hadoop's file
systems instead; this is for the few objects the driver and the readers handle themselves.
Cloud SDKs are imported lazily so that a local run needs neither.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse


class ObjectStoreError(RuntimeError):
    """An object could not be read or written; the message names the URI."""


@dataclass(frozen=True)
class Location:
    scheme: str  # "s3", "gs" or "file"
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return self.key
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> Location:
    parsed = urlparse(uri)
    if parsed.scheme in ("s3", "s3a", "gs"):
        if not parsed.netloc:
            raise ObjectStoreError(f"URI {uri!r} has no bucket")
        return Location(
            "s3" if parsed.scheme.startswith("s3") else "gs", parsed.netloc, parsed.path.lstrip("/")
        )
    if parsed.scheme in ("", "file"):
        return Location("file", "", parsed.path if parsed.scheme else uri)
    raise ObjectStoreError(
        f"unsupported URI scheme {parsed.scheme!r} in {uri!r}: use s3://, gs:// or a local path"
    )


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def aws_region() -> str:
    """The region of the stack's buckets, which the EMR step exports to the driver and the
    executors. Never left to boto3: without one it signs for us-east-1 and goes to the
    global endpoint, which a VPC's S3 gateway endpoint in another region does not route."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise ObjectStoreError(
            "no AWS region for S3: set AWS_REGION to the buckets' region (the stack's EMR step "
            "exports it to the driver and executors)"
        )
    return region


def _s3() -> Any:
    import boto3

    # AWS_ENDPOINT_URL(_S3) is honoured by boto3 itself, which is how tests reach moto.
    return boto3.client("s3", region_name=aws_region())


def _gcs_bucket(name: str) -> Any:
    from google.cloud import storage

    return storage.Client().bucket(name)


def read_bytes(uri: str) -> bytes:
    where = parse_uri(uri)
    try:
        if where.scheme == "file":
            return Path(where.key).read_bytes()
        if where.scheme == "s3":
            return _s3().get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        return _gcs_bucket(where.bucket).blob(where.key).download_as_bytes()
    except Exception as error:
        raise ObjectStoreError(f"cannot read {uri}: {error}") from error


def write_bytes(uri: str, data: bytes) -> None:
    where = parse_uri(uri)
    try:
        if where.scheme == "file":
            path = Path(where.key)
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so that a reader never sees half a file.
            temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            temporary.write_bytes(data)
            temporary.replace(path)
        elif where.scheme == "s3":
            _s3().put_object(Bucket=where.bucket, Key=where.key, Body=data)
        else:
            _gcs_bucket(where.bucket).blob(where.key).upload_from_string(data)
    except Exception as error:
        raise ObjectStoreError(f"cannot write {uri}: {error}") from error


def exists(uri: str) -> bool:
    where = parse_uri(uri)
    try:
        if where.scheme == "file":
            return Path(where.key).exists()
        if where.scheme == "s3":
            from botocore.exceptions import ClientError

            try:
                _s3().head_object(Bucket=where.bucket, Key=where.key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
            return True
        return bool(_gcs_bucket(where.bucket).blob(where.key).exists())
    except ObjectStoreError:
        raise
    except Exception as error:
        raise ObjectStoreError(f"cannot check {uri}: {error}") from error


def list_names(prefix_uri: str) -> list[str]:
    """Names (the last path segment) of the objects directly under a "directory" URI."""
    where = parse_uri(prefix_uri)
    try:
        if where.scheme == "file":
            directory = Path(where.key)
            if not directory.is_dir():
                return []
            return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
        prefix = where.key.rstrip("/") + "/"
        if where.scheme == "s3":
            names = []
            pages = (
                _s3()
                .get_paginator("list_objects_v2")
                .paginate(Bucket=where.bucket, Prefix=prefix, Delimiter="/")
            )
            for page in pages:
                names.extend(o["Key"][len(prefix) :] for o in page.get("Contents", []))
            return sorted(names)
        blobs = _gcs_bucket(where.bucket).client.list_blobs(
            where.bucket, prefix=prefix, delimiter="/"
        )
        return sorted(b.name[len(prefix) :] for b in blobs)
    except Exception as error:
        raise ObjectStoreError(f"cannot list {prefix_uri}: {error}") from error


def delete(uri: str) -> None:
    where = parse_uri(uri)
    try:
        if where.scheme == "file":
            Path(where.key).unlink(missing_ok=True)
        elif where.scheme == "s3":
            _s3().delete_object(Bucket=where.bucket, Key=where.key)
        else:
            blob = _gcs_bucket(where.bucket).blob(where.key)
            if blob.exists():
                blob.delete()
    except Exception as error:
        raise ObjectStoreError(f"cannot delete {uri}: {error}") from error
