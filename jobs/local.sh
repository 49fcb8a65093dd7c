#!/usr/bin/env bash
# The README's first command: the whole pipeline on this machine (the embedded default).
# On a fresh machine it installs what the flavour needs, then runs `python -m kappa_local run`.
#   bash jobs/local.sh                     aws flavour: moto (Kinesis, S3, DynamoDB)
#   bash jobs/local.sh gcp                 Google's Pub/Sub fake and Bigtable emulator
#   bash jobs/local.sh postgres            moto, with Debian's PostgreSQL serving
#   bash jobs/local.sh aws --events 20000 --rate 500 --kill-job-at 0.5
#                                          further arguments go to `python -m kappa_local run`
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=../tests/setup.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/setup.sh"

main() {
  local flavour=aws
  case "${1:-}" in
    aws | gcp | postgres)
      flavour="$1"
      shift
      ;;
  esac
  ensure_java
  if [ "$flavour" = gcp ]; then
    ensure_go
  fi
  if [ "$flavour" = postgres ]; then
    ensure_postgresql
  fi
  ensure_venv
  cd "$repo/jobs"
  exec "$venv/bin/python" -m kappa_local run --flavour "$flavour" "$@"
}

main "$@"
