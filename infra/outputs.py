"""The stack outputs both platforms export, under the same names where the meaning is the same.

Each output is declared here with its description, as terraform-aws-emr's `outputs.tf` does;
the outputs table of docs/configuration.md is this mapping, row for row, and a test
(tests/infra/test_outputs.py) keeps the two equal. A platform's `stack_outputs()` exports
exactly these names (the platform tests check it), so a new output needs a description here
before it can be exported.
"""

from __future__ import annotations

from types import MappingProxyType

# Output name -> what it holds on each cloud. One line of Markdown each (a table cell in
# docs/configuration.md).
STACK_OUTPUTS = MappingProxyType(
    {
        "cloud": "The cloud this stack runs on: `aws` or `gcp`.",
        "region": "The region of the stack's resources (`aws:region` or `gcp:region`).",
        "broker_name": "The broker: the Kinesis stream's name, or the Pub/Sub topic's name.",
        "broker_id": "The broker's id: the Kinesis stream's ARN, or the Pub/Sub topic's id.",
        "buckets": "Bucket name per role (archive, checkpoints, artifacts, logs, dead_letters; "
        "on GCP also staging).",
        "cluster_id": "The EMR cluster's id, or the Dataproc cluster's id.",
        "cluster_master": "The master node: the EMR master's private DNS name, or the Dataproc "
        "master's instance name.",
        "serving_kind": "The serving store (`servingKind`): dynamodb on AWS and bigtable on GCP "
        "unless set.",
        "serving_table": "The live pipeline version's serving table, the one readers query.",
        "serving_tables": "Serving table name per pipeline version.",
        "job_specs": "The pipeline spec's URI per pipeline version (content-addressed).",
        "job_bundle": "The URI of the job package the cluster runs.",
        "logs_uri": "Where the cluster's logs go: EMR's log URI in the logs bucket, or the "
        "logs bucket (Dataproc's temp bucket).",
    }
)
