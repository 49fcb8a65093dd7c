#!/usr/bin/env bash
# The project's test command (README): on a fresh machine it installs what the tests need,
# then runs the linters, the type checker and every test tier with pytest.
#   bash tests/run.sh              everything
#   bash tests/run.sh tests/infra  one tier (arguments go to pytest)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"

# The set-up (ensure_system_packages, ensure_venv, say) is shared with jobs/local.sh. The lint
# below runs shellcheck on this file without -x, hence SC1091 off; with -x it follows setup.sh.
# shellcheck source=setup.sh disable=SC1091
source "$repo/tests/setup.sh"

lint() {
  say "ruff"
  "$venv/bin/ruff" check "$repo"
  "$venv/bin/ruff" format --check "$repo"
  say "shellcheck"
  # -x follows the library each init script sources (and gets inlined on upload).
  "$venv/bin/shellcheck" -x "$repo"/bootstrap/*.sh "$repo"/bootstrap/lib/*.sh
  "$venv/bin/shellcheck" -x "$repo"/tests/run.sh "$repo"/tests/setup.sh "$repo"/jobs/local.sh "$repo"/.ci/run
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
