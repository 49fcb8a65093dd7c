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
# /usr/share/google/get_metadata_value); gcloud, curl, sleep and logger come from PATH;
# KAPPA_PYTHON names the interpreter to build the venv with.
set -Eeuo pipefail

# shellcheck source=lib/node-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/node-setup.sh"  # kappa:inline

readonly GET_METADATA="${KAPPA_ROOT:-}/usr/share/google/get_metadata_value"
readonly METADATA_URL=http://metadata.google.internal/computeMetadata/v1/instance/attributes

as_root() { "$@"; } # Dataproc runs initialization actions as root already

fetch() { gcloud storage cp --quiet "$1" "$2"; }

# Dataproc images have python3.11 (Debian 12's own), and an offline node has nowhere to get one.
install_python() { return 1; }

# Sets METADATA_READER: Dataproc images have Google's helper; without it, ask the server.
choose_metadata_reader() {
  if [[ -x $GET_METADATA ]]; then
    METADATA_READER=metadata_from_helper
  elif command -v curl >/dev/null; then
    warn "$GET_METADATA is missing; reading cluster metadata from $METADATA_URL instead"
    METADATA_READER=metadata_from_server
  else
    die "cannot read cluster metadata: $GET_METADATA is missing and there is no curl; run this" \
      "script only as a Dataproc initialization action, on a Dataproc image"
  fi
}

# The helper retries connection failures itself and ends with curl -f's status, 22, when the
# server answers 404: the attribute is not set.
metadata_from_helper() {
  local status=0
  "$GET_METADATA" "attributes/$1" || status=$?
  ((status != 22)) || return "$NO_RETRY"
  return "$status"
}

metadata_from_server() {
  local code
  code=$(curl --silent --show-error --max-time 10 --output "$STAGE/metadata" \
    --write-out '%{http_code}' --header 'Metadata-Flavor: Google' "$METADATA_URL/$1") || return 1
  case $code in
    200) cat "$STAGE/metadata" ;;
    404) return "$NO_RETRY" ;;
    *)
      warn "the metadata server answered HTTP $code for attribute $1"
      return 1
      ;;
  esac
}

# read_attribute VARIABLE NAME: a cluster metadata attribute (the metadata server is a
# network call, so it is retried, unless it says the attribute is not set).
read_attribute() {
  local value status=0
  value=$(retry "reading metadata attribute $2" "$METADATA_READER" "$2") || status=$?
  ((status != NO_RETRY)) ||
    die "the cluster metadata has no attribute $2; the stack sets it on the cluster" \
      "(GceClusterConfig metadata): check that the cluster was created by \`pulumi up\`"
  ((status == 0)) ||
    die "cannot read the cluster metadata attribute $2 after $ATTEMPTS attempts; the metadata" \
      "server did not answer (see the messages above)"
  printf -v "$1" '%s' "$value"
}

main() {
  local role uri sha
  begin
  choose_metadata_reader
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

METADATA_READER=""
main "$@"
