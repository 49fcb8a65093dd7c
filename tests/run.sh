#!/usr/bin/env bash
# The project's test command (README): on a fresh machine it installs what the tests need,
# then runs the linters, the type checker and every test tier with pytest.
#   bash tests/run.sh              everything
#   bash tests/run.sh tests/infra  one tier (arguments go to pytest)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"

say() { printf '\n== %s\n' "$*"; }

need_root_for() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing $1: install it (e.g. sudo apt-get install $1) and run again" >&2
    exit 1
  fi
}

apt_install() {
  need_root_for "$*"
  if [ -z "${apt_updated:-}" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_system_packages() {
  # Spark 4 runs on Java 17; the Go toolchain builds Google's Pub/Sub and Bigtable fakes;
  # PostgreSQL serves the postgres sink's tests.
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH="/usr/local/go/bin:$PATH"
  fi
  command -v go >/dev/null || apt_install golang-go
  if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    apt_install postgresql
  fi
}

ensure_venv() {
  local stamp="$venv/.requirements.sha256"
  local wanted
  wanted="$(cat "$repo"/requirements*.txt "$repo"/jobs/requirements.txt | sha256sum | cut -d' ' -f1)"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing Python packages"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$repo/requirements-dev.txt"
    echo "$wanted" >"$stamp"
  fi
}

lint() {
  say "ruff"
  "$venv/bin/ruff" check "$repo"
  "$venv/bin/ruff" format --check "$repo"
  say "shellcheck"
  # -x follows the library each init script sources (and gets inlined on upload).
  "$venv/bin/shellcheck" -x "$repo"/bootstrap/*.sh "$repo"/bootstrap/lib/*.sh
  "$venv/bin/shellcheck" "$repo"/tests/run.sh "$repo"/.ci/run
}

typecheck() {
  say "pyright"
  (cd "$repo" && "$venv/bin/pyright" --warnings)
}

main() {
  cd "$repo"
  ensure_system_packages
  ensure_venv
  lint
  typecheck
  say "pytest"
  "$venv/bin/pytest" "$@"
}

main "$@"
