"""The stack outputs both platforms export, under the same names where the meaning is the same.

cloud, region; broker_name and broker_id (stream name and ARN / topic name and id); buckets
(role -> bucket name); cluster_id and cluster_master; serving_kind, serving_table (the live
version's) and serving_tables (version -> table); job_specs (version -> spec URI), job_bundle
(the package's URI) and logs_uri.
"""

STACK_OUTPUTS = (
    "cloud",
    "region",
    "broker_name",
    "broker_id",
    "buckets",
    "cluster_id",
    "cluster_master",
    "serving_kind",
    "serving_table",
    "serving_tables",
    "job_specs",
    "job_bundle",
    "logs_uri",
)
