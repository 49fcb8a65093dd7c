# shellcheck shell=bash
# What the EMR bootstrap action and the Dataproc initialization action do alike: download the
# wheelhouse, check it, and install it into /opt/kappa/venv. Functions and constants only, so
# sourcing it does nothing by itself; each script supplies as_root, fetch and install_python,
# its cloud's way.
#
# A cluster runs one object per script, so this file is never uploaded by itself:
# infra/artifacts.py (inline_sources) puts its text in place of each script's
# `source ... # kappa:inline` line when the stack uploads the script. In the repository the
# scripts source it, so they also run as they are. The script sets `set -Eeuo pipefail` first.

readonly KAPPA_DIR="${KAPPA_ROOT:-}/opt/kappa"
readonly VENV="$KAPPA_DIR/venv"
readonly MARKER="$VENV/.wheelhouse-sha256"
readonly PROFILE="${KAPPA_ROOT:-}/etc/profile.d/kappa-venv.sh"
readonly ATTEMPTS=5
# A command's exit status meaning "retrying cannot help" (e.g. a 404): retry gives up at once.
readonly NO_RETRY=99
STAGE=""
PYTHON=""

log() { printf '%s kappa-bootstrap: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }
warn() { log "$*" >&2; }

syslog() {
  if command -v logger >/dev/null; then logger -t kappa-bootstrap -- "$*" || true; fi
}

die() {
  warn "ERROR: $*"
  syslog "failed: $*"
  exit 1
}

cleanup() {
  if [[ -n $STAGE ]]; then rm -rf -- "$STAGE" || true; fi
}

begin() {
  umask 022 # the venv is read by YARN containers running as other users
  trap 'die "unexpected failure at line $LINENO: $BASH_COMMAND (see the messages above)"' ERR
  trap cleanup EXIT
  STAGE=$(mktemp -d "${TMPDIR:-/tmp}/kappa-bootstrap.XXXXXX")
}

# retry WHAT COMMAND...: up to ATTEMPTS tries, waiting 2, 4, 8, 16 s in between; returns the
# last status, at once if it is NO_RETRY.
retry() {
  local what=$1 attempt delay=2 status
  shift
  for ((attempt = 1; ; attempt++)); do
    status=0
    "$@" || status=$?
    ((status != 0)) || return 0
    ((status != NO_RETRY && attempt < ATTEMPTS)) || return "$status"
    warn "$what failed (attempt $attempt of $ATTEMPTS); retrying in ${delay}s"
    sleep "$delay"
    delay=$((delay * 2))
  done
}

is_sha256() { [[ $1 =~ ^[0-9a-f]{64}$ ]]; }

already_installed() {
  [[ -x $VENV/bin/python && -r $MARKER && $(<"$MARKER") == "$1" ]]
}

download_wheelhouse() {
  local uri=$1 expected=$2 actual
  retry "downloading $uri" fetch "$uri" "$STAGE/wheelhouse.tar" ||
    die "could not download $uri after $ATTEMPTS attempts; check that \`pulumi up\` uploaded" \
      "it and that this node's identity may read that bucket"
  actual=$(sha256sum "$STAGE/wheelhouse.tar")
  actual=${actual%% *}
  [[ $actual == "$expected" ]] ||
    die "checksum mismatch for $uri: expected $expected, got $actual; the object is not the" \
      "one the stack recorded, run \`pulumi up\` again to upload it with its checksum"
}

unpack_wheelhouse() {
  mkdir "$STAGE/wheelhouse"
  tar -xf "$STAGE/wheelhouse.tar" -C "$STAGE/wheelhouse" ||
    die "cannot unpack the wheelhouse; rebuild it with infra/wheelhouse.py (pulumi up does)"
  [[ -r $STAGE/wheelhouse/requirements.txt && -r $STAGE/wheelhouse/target.env ]] ||
    die "the wheelhouse has no requirements.txt or target.env; rebuild it with infra/wheelhouse.py"
}

target() { sed -n "s/^$1=//p" "$STAGE/wheelhouse/target.env"; }

# PYTHON gets an absolute path, because sudo's secure_path may not include the directory.
choose_python() {
  local version
  version=$(target python)
  if [[ -n ${KAPPA_PYTHON:-} ]]; then
    PYTHON=$(command -v "$KAPPA_PYTHON" || true)
    [[ -n $PYTHON ]] ||
      die "KAPPA_PYTHON=$KAPPA_PYTHON is not an executable file nor a command on PATH; point" \
        "it at a python$version or unset it to use the node's own"
    return 0
  fi
  PYTHON=$(command -v "python$version" || true)
  if [[ -z $PYTHON ]] && install_python "$version"; then
    PYTHON=$(command -v "python$version" || true)
  fi
  [[ -n $PYTHON ]] || PYTHON=$(command -v python3 || true)
  [[ -n $PYTHON ]] ||
    die "no python$version or python3 found (PATH=$PATH); set KAPPA_PYTHON or use a" \
      "node image that has it"
}

check_node_matches_wheelhouse() {
  local want have
  want=$(target python)
  have=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
    die "$PYTHON does not run; set KAPPA_PYTHON to a working python$want"
  [[ $have == "$want" ]] ||
    die "the wheelhouse is for Python $want but $PYTHON is Python $have; install python$want" \
      "on the node image or build the wheelhouse for $have (infra/wheelhouse.py Platform)"
  want=$(target machine)
  have=$(uname -m)
  [[ $have == "$want" ]] ||
    die "the wheelhouse is for $want but this node is $have; build it for $have" \
      "(infra/wheelhouse.py Platform.machine) or use $want instance types"
}

install_requirements() {
  local wheelhouse=$STAGE/wheelhouse
  local pip=("$wheelhouse"/pip-*.whl)
  [[ -f ${pip[0]} ]] || die "the wheelhouse has no pip wheel; rebuild it with infra/wheelhouse.py"
  as_root mkdir -p "$KAPPA_DIR" ||
    die "cannot create $KAPPA_DIR as root; on EMR the hadoop user needs passwordless sudo"
  # pip runs from its wheel, so the venv needs no ensurepip (absent from Debian's python3).
  as_root "$PYTHON" -m venv --clear --without-pip "$VENV" ||
    die "cannot create the virtualenv $VENV with $PYTHON"
  as_root "$VENV/bin/python" "${pip[0]}/pip" install --isolated --no-index \
    --find-links "$wheelhouse" --only-binary=:all: --no-cache-dir --disable-pip-version-check \
    --root-user-action=ignore --progress-bar off -r "$wheelhouse/requirements.txt" ||
    die "pip could not install the job's requirements from the wheelhouse (its output is" \
      "above); rebuild the wheelhouse with infra/wheelhouse.py for this node's platform"
}

# Master only. Jobs set spark.pyspark.python themselves; this serves people on the master:
# `pyspark` or `spark-submit` in a login shell get the job's interpreter and dependencies.
export_venv_to_login_shells() {
  as_root mkdir -p "${PROFILE%/*}"
  printf 'export PYSPARK_PYTHON=%s\nexport PYSPARK_DRIVER_PYTHON=%s\n' \
    "$VENV/bin/python" "$VENV/bin/python" | as_root tee "$PROFILE" >/dev/null
}

record_installed() { printf '%s\n' "$1" | as_root tee "$MARKER" >/dev/null; }

# install_node ROLE URI SHA256: ROLE is master or worker.
install_node() {
  local role=$1 uri=$2 sha=$3
  if already_installed "$sha"; then
    log "wheelhouse ${sha:0:12} is already installed in $VENV; nothing to do"
    syslog "$role node: wheelhouse ${sha:0:12} already installed in $VENV, nothing to do"
    return 0
  fi
  download_wheelhouse "$uri" "$sha"
  unpack_wheelhouse
  choose_python
  check_node_matches_wheelhouse
  install_requirements
  if [[ $role == master ]]; then export_venv_to_login_shells; fi
  record_installed "$sha"
  log "installed wheelhouse ${sha:0:12} into $VENV on this $role node in ${SECONDS}s"
  syslog "$role node: installed wheelhouse ${sha:0:12} into $VENV in ${SECONDS}s"
}
