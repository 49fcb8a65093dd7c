#!/usr/bin/env bash
# Set-up shared by the README's two commands (tests/run.sh and jobs/local.sh), which source
# it: on a fresh machine it installs what is missing (Java, Go, PostgreSQL, the virtualenv).
# Only functions and two paths; nothing runs when it is sourced.

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

ensure_java() {
  # Spark 4 runs on Java 17.
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
}

go_minor() {
  "$1" version | sed -E 's/.* go1\.([0-9]+).*/\1/'
}

bootstrap_go_toolchain() {
  # Debian 12's golang-go is Go 1.19, too old for the emulators' go.mod (Go 1.21+ fetches the
  # toolchain a go.mod names by itself). Go publishes its toolchains as modules on the Go
  # module proxy (golang.org/toolchain), which even an old go can download.
  local want arch dir
  want="$(awk '$1 == "go" { print $2; exit }' "$repo/jobs/emulators/pubsub/go.mod")"
  arch="$(go env GOARCH)"
  say "fetching Go $want from the Go module proxy (apt's Go is too old)"
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-modcacherw go mod download -json \
    "golang.org/toolchain@v0.0.1-go${want}.linux-${arch}" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')"
  if [ -z "$dir" ] || [ ! -f "$dir/bin/go" ]; then
    echo "could not fetch Go $want from the Go module proxy: install Go 1.21 or newer" >&2
    exit 1
  fi
  rm -rf "$repo/.local/go"
  mkdir -p "$repo/.local"
  cp -r "$dir" "$repo/.local/go"
  # Module zips carry no file modes.
  chmod -R u+w "$repo/.local/go"
  chmod +x "$repo"/.local/go/bin/* "$repo"/.local/go/pkg/tool/*/*
}

ensure_go() {
  # The Go toolchain builds Google's Pub/Sub and Bigtable fakes (jobs/emulators).
  local candidate
  if command -v go >/dev/null && [ "$(go_minor go)" -ge 21 ]; then
    return
  fi
  # /usr/local/go: the official tarball's place; .local/go: bootstrap_go_toolchain's.
  for candidate in /usr/local/go/bin "$repo/.local/go/bin"; do
    if [ -x "$candidate/go" ] && [ "$(go_minor "$candidate/go")" -ge 21 ]; then
      export PATH="$candidate:$PATH"
      return
    fi
  done
  command -v go >/dev/null || apt_install golang-go
  if [ "$(go_minor go)" -lt 21 ]; then
    bootstrap_go_toolchain
    export PATH="$repo/.local/go/bin:$PATH"
  fi
}

ensure_postgresql() {
  # Debian's PostgreSQL serves the postgres sink (its tests, and the postgres flavour).
  if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    apt_install postgresql
  fi
}

ensure_system_packages() {
  # Spark 4 runs on Java 17; the Go toolchain builds Google's Pub/Sub and Bigtable fakes;
  # PostgreSQL serves the postgres sink's tests.
  ensure_java
  ensure_go
  ensure_postgresql
}

ensure_python() {
  # Debian and Ubuntu ship python3 without its venv module (package python3-venv).
  command -v python3 >/dev/null || apt_install python3 python3-venv
  python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
}

ensure_venv() {
  local stamp="$venv/.requirements.sha256"
  local wanted
  wanted="$(cat "$repo"/requirements*.txt "$repo"/jobs/requirements.txt | sha256sum | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ]; then
    ensure_python
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    say "installing Python packages"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$repo/requirements-dev.txt"
    echo "$wanted" >"$stamp"
  fi
}
