#!/usr/bin/env bash
# Dataproc initialization action: install the streaming job's Python dependencies into
# /opt/kappa/venv, the interpreter the job is submitted with
# (spark.pyspark.python=/opt/kappa/venv/bin/python).
#
# Initialization actions take no arguments, so the stack sets two cluster metadata
# attributes: kappa-wheelhouse-uri (gs://BUCKET/KEY of the wheelhouse it uploaded, built by
# infra/wheelhouse.py) and kappa-wheelhouse-sha256 (that object's sha256). Nodes have no
# internet egress, so nothing comes from a package index: the wheelhouse is downloaded,
# checked against the sha256 and installed with `pip install --no-index`.
#
# Dataproc runs initialization actions as root, one after another, on every node (also
# nodes added by autoscaling), and fails cluster creation if one exits non-zero or runs
# longer than its timeout (10 minutes by default). Dataproc keeps this script's output in
# /var/log/dataproc-initialization-script-<n>.log (and in the staging bucket); a summary
# line goes to syslog. Running it again with the same wheelhouse does nothing.
#
# For tests: KAPPA_ROOT prefixes every absolute path the script touches (including
# /usr/share/google/get_metadata_value); gcloud, sleep and logger come from PATH;
# KAPPA_PYTHON names the interpreter to build the venv with.
set -Eeuo pipefail

# shellcheck source=lib/node-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/node-setup.sh"  # kappa:inline

readonly GET_METADATA="${KAPPA_ROOT:-}/usr/share/google/get_metadata_value"

as_root() { "$@"; } # Dataproc runs initialization actions as root already

fetch() { gcloud storage cp --quiet "$1" "$2"; }

# read_attribute VARIABLE NAME: a cluster metadata attribute (the metadata server is a
# network call, so it is retried).
read_attribute() {
  local value
  if ! value=$(retry "reading metadata attribute $2" "$GET_METADATA" "attributes/$2"); then
    die "cannot read the cluster metadata attribute $2; the stack sets it on the cluster" \
      "(GceClusterConfig metadata): check that the cluster was created by \`pulumi up\`"
  fi
  printf -v "$1" '%s' "$value"
}

main() {
  local role uri sha
  begin
  read_attribute role dataproc-role
  read_attribute uri kappa-wheelhouse-uri
  read_attribute sha kappa-wheelhouse-sha256
  case $role in
    Master) role=master ;;
    Worker) role=worker ;;
    *) die "unknown dataproc-role '$role' (expected Master or Worker); is this a Dataproc node?" ;;
  esac
  [[ $uri == gs://?*/?* ]] ||
    die "kappa-wheelhouse-uri must be a gs://BUCKET/KEY URI, got '$uri'"
  is_sha256 "$sha" ||
    die "kappa-wheelhouse-sha256 must be 64 lower-case hex digits (sha256), got '$sha'"
  install_node "$role" "$uri" "$sha"
}

main "$@"
