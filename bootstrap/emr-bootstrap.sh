#!/usr/bin/env bash
# EMR bootstrap action: install the streaming job's Python dependencies into /opt/kappa/venv,
# the interpreter the job is submitted with (spark.pyspark.python=/opt/kappa/venv/bin/python).
#
#   emr-bootstrap.sh s3://BUCKET/KEY SHA256
#
# The stack passes the wheelhouse it uploaded (infra/wheelhouse.py) and that object's sha256.
# Nodes have no internet egress, so nothing comes from a package index: the wheelhouse is
# downloaded, checked against the sha256 and installed with `pip install --no-index`.
#
# EMR runs bootstrap actions on every node, including nodes added later by scaling, as the
# hadoop user and before applications are installed: root-owned paths go through sudo, and
# nothing here may rely on Spark or Hadoop. EMR keeps this script's stdout and stderr under
# /mnt/var/log/bootstrap-actions/ (and in the cluster's log bucket); a summary line goes to
# syslog. Running it again with the same wheelhouse does nothing.
#
# For tests: KAPPA_ROOT prefixes every absolute path the script touches; aws, dnf, sudo, sleep
# and logger come from PATH; KAPPA_PYTHON names the interpreter to build the venv with.
set -Eeuo pipefail

# shellcheck source=lib/node-setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/node-setup.sh"  # kappa:inline

readonly INSTANCE_INFO="${KAPPA_ROOT:-}/mnt/var/lib/info/instance.json"
readonly EXTRA_INSTANCE_DATA="${KAPPA_ROOT:-}/mnt/var/lib/info/extraInstanceData.json"

# -n: fail at once instead of waiting for a password nobody will type.
as_root() { sudo -n "$@"; }

node_region() {
  if [[ -r $EXTRA_INSTANCE_DATA ]]; then
    sed -n 's/.*"region"[[:space:]]*:[[:space:]]*"\([a-z0-9-]*\)".*/\1/p' "$EXTRA_INSTANCE_DATA"
  fi
}

# An explicit region sends the request to the regional S3 endpoint, which a private subnet
# reaches through the VPC's S3 gateway endpoint; the CLI's default may need the internet.
fetch() {
  local region=${AWS_REGION:-${AWS_DEFAULT_REGION:-$(node_region)}}
  aws s3 cp --only-show-errors ${region:+--region "$region"} "$1" "$2"
}

# install_python VERSION: emr-spark-8 and EMR 7 run on Amazon Linux 2023, whose own python3 is
# 3.9. Their release pages list Python 3.11 with the applications, which are installed after
# bootstrap actions run, and no AWS document says python3.11 is on the AMI before that. AL2023
# serves its package repositories from S3, which private subnets reach through the VPC's S3
# gateway endpoint.
install_python() {
  command -v dnf >/dev/null || return 1
  log "python$1 is not on this node; installing it from the Amazon Linux repositories"
  retry "installing python$1 with dnf" as_root dnf install -y "python$1" ||
    die "could not install python$1 with dnf after $ATTEMPTS attempts (its output is above);" \
      "nodes reach the Amazon Linux repositories in S3 through the VPC's S3 gateway endpoint:" \
      "check its route table and policy, or use a custom AMI that has python$1"
}

node_role() {
  [[ -r $INSTANCE_INFO ]] ||
    die "cannot tell this node's role: $INSTANCE_INFO is missing; EMR writes it before" \
      "bootstrap actions run, so run this script only as an EMR bootstrap action"
  if grep -Eq '"isMaster"[[:space:]]*:[[:space:]]*true' "$INSTANCE_INFO"; then
    ROLE=master
  else
    ROLE=worker
  fi
}

main() {
  [[ $# -eq 2 ]] ||
    die "usage: emr-bootstrap.sh s3://BUCKET/KEY SHA256 (got $# arguments); the stack passes" \
      "both as the bootstrap action's Args"
  local uri=$1 sha=$2
  [[ $uri == s3://?*/?* ]] || die "the wheelhouse must be an s3://BUCKET/KEY URI, got '$uri'"
  is_sha256 "$sha" || die "the checksum must be 64 lower-case hex digits (sha256), got '$sha'"
  begin
  node_role
  install_node "$ROLE" "$uri" "$sha"
}

ROLE=""
main "$@"
