#!/usr/bin/env bash
# Create or converge .venv to a lock and install liveclass (editable).
#
#   bash scripts/bootstrap.sh --runtime       # only what `liveclass serve` needs (scripts/serve.sh)
#   bash scripts/bootstrap.sh                 # the development toolchain: requirements.lock, tests/yjs
#   bash scripts/bootstrap.sh --system-deps   # also apt-install Chromium + fonts, Redis, HAProxy, coturn
#
# --runtime installs requirements-runtime.lock only: no Node.js packages, no test, lint or load-test
# tools. Without it: requirements.lock (runtime + test + bench + loadtest), `npm ci` in tests/yjs,
# and a wheel of every runtime package in .venv/runtime-wheels (tests/integration/
# test_first_command.py installs the runtime offline from it).
# Idempotent and fast when nothing changed: a stamp file in .venv holds the sha256 of the lock and
# pyproject.toml; when it matches, no pip command runs (a full .venv also satisfies --runtime).
# Environment: PYTHON (default python3) is the interpreter used to create .venv.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SYSTEM_DEPS=0
RUNTIME=0
for arg in "$@"; do
    case "$arg" in
        --system-deps) SYSTEM_DEPS=1 ;;
        --runtime) RUNTIME=1 ;;
        -h | --help)
            sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "bootstrap: unknown argument: $arg" >&2
            exit 2
            ;;
    esac
done

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
FULL_LOCK="$ROOT/requirements.lock"
RUNTIME_LOCK="$ROOT/requirements-runtime.lock"
LOCK="$FULL_LOCK"
[[ "$RUNTIME" -eq 1 ]] && LOCK="$RUNTIME_LOCK"
STAMP="$VENV/.liveclass-bootstrap.stamp"
WHEELS="$VENV/runtime-wheels"
# Bump when this script's install logic changes, to force a re-converge.
BOOTSTRAP_VERSION=3
# The build backend of `pip install -e .` (pyproject.toml [build-system]) and what hatchling needs
# for an editable build, kept beside the runtime wheels so that an offline install can build it.
BUILD_BACKEND=("hatchling==1.33.0" "editables==0.6")

log() { echo "bootstrap: $*" >&2; }
die() {
    echo "bootstrap: ERROR: $*" >&2
    exit 1
}

[[ -f "$LOCK" ]] || die "$LOCK is missing (run scripts/lock.sh)"

# ---------------------------------------------------------------- system packages (apt)
# Chromium for Playwright (launched via executable_path=/usr/bin/chromium; never
# `playwright install`) and fonts so that pages render text; Redis 7 for the local cluster of
# deploy/redis-cluster/, HAProxy 2.6 for deploy/haproxy/ and coturn 4.6 for deploy/coturn/ (the
# tests start and stop all three); systemd for `systemd-analyze verify` of deploy/systemd/.
SYSTEM_PACKAGES=(chromium fonts-liberation fonts-dejavu-core redis-server redis-tools haproxy coturn systemd)

apt_updated=0
as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: $*"
    if [[ "$apt_updated" -eq 0 ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
        apt_updated=1
    fi
    log "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" </dev/null
}
deb_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

if [[ "$SYSTEM_DEPS" -eq 1 ]] && [[ "$RUNTIME" -eq 1 ]]; then
    die "--system-deps installs what the tests need; it does not go with --runtime"
fi
if [[ "$SYSTEM_DEPS" -eq 1 ]]; then
    missing=()
    if command -v dpkg-query >/dev/null 2>&1; then
        for pkg in "${SYSTEM_PACKAGES[@]}"; do
            deb_installed "$pkg" || missing+=("$pkg")
        done
    elif [[ ! -x /usr/bin/chromium ]]; then
        die "not a Debian system and /usr/bin/chromium is missing"
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        apt_install "${missing[@]}"
    fi
    [[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium is still missing after install"
    command -v redis-server >/dev/null 2>&1 || die "redis-server is still missing after install"
    # promtool (checks and unit-tests deploy/prometheus/alerts.yml): only the binary out of
    # Debian's prometheus package, neither the server nor its service, so nothing starts.
    if ! command -v promtool >/dev/null 2>&1; then
        [[ "$apt_updated" -eq 1 ]] || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null; apt_updated=1; }
        log "promtool from Debian's prometheus package"
        deb_dir="$(mktemp -d)"
        (cd "$deb_dir" && apt-get download -qq prometheus </dev/null) || die "apt-get download prometheus failed"
        dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
        as_root install -m 0755 "$deb_dir/root/usr/bin/promtool" /usr/local/bin/promtool
        rm -rf "$deb_dir"
    fi
    command -v promtool >/dev/null 2>&1 || die "promtool is still missing after install"
fi

# ---------------------------------------------------------------- python venv
# Serialise concurrent bootstraps of the same checkout (e.g. serve.sh + test.sh).
if command -v flock >/dev/null 2>&1; then
    lockfile="${TMPDIR:-/tmp}/liveclass-bootstrap-$(printf '%s' "$ROOT" | sha256sum | cut -c1-16).lock"
    exec 9>"$lockfile"
    flock 9
fi

# ---------------------------------------------------------------- node packages (tests/yjs)
# The real Yjs clients of tests/integration/test_whiteboard_yjs.py. `npm ci` only when
# package-lock.json changed (stamp in node_modules, which `npm ci` recreates), so an up-to-date
# checkout touches no network.
# Not with --runtime: the server never runs Node.js.
YJS_DIR="$ROOT/tests/yjs"
YJS_STAMP="$YJS_DIR/node_modules/.liveclass-bootstrap.stamp"
yjs_expected="$(cat "$YJS_DIR/package.json" "$YJS_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ "$RUNTIME" -eq 1 ]]; then
    :
elif [[ -f "$YJS_STAMP" ]] && [[ "$(cat "$YJS_STAMP")" == "$yjs_expected" ]]; then
    log "tests/yjs/node_modules is up to date with package-lock.json"
else
    command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js >= 18 with npm"
    log "npm ci in tests/yjs"
    (cd "$YJS_DIR" && timeout 600 npm ci --no-audit --no-fund --ignore-scripts --loglevel=error \
        </dev/null >&2) || die "npm ci in tests/yjs failed"
    printf '%s\n' "$yjs_expected" >"$YJS_STAMP"
fi

stamp_of() { echo "v${BOOTSTRAP_VERSION} $1 $(cat "$2" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"; }
full_stamp="$(stamp_of full "$FULL_LOCK")"
expected_stamp="$full_stamp"
[[ "$RUNTIME" -eq 1 ]] && expected_stamp="$(stamp_of runtime "$RUNTIME_LOCK")"

venv_ok() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        >/dev/null 2>&1
}

if venv_ok && [[ -f "$STAMP" ]] && [[ -x "$VENV/bin/liveclass" ]] \
    && { [[ "$(cat "$STAMP")" == "$expected_stamp" ]] || [[ "$(cat "$STAMP")" == "$full_stamp" ]]; }; then
    log ".venv is up to date with $(basename "$LOCK")"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set PYTHON=/path/to/python3.11)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is $("$PYTHON" --version 2>&1); liveclass needs Python >= 3.11"

rm -f "$STAMP"
if ! venv_ok; then
    log "creating .venv with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv --clear "$VENV" 2>/dev/null; then
        # Debian's python3 ships venv/ensurepip separately.
        pyver="$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install python3-venv "python${pyver}-venv"
        "$PYTHON" -m venv --clear "$VENV"
    fi
fi

PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
export PIP_PROGRESS_BAR=off

log "installing $(basename "$LOCK") (--require-hashes)"
"${PIP[@]}" install --quiet --require-hashes -r "$LOCK"

# Converge: drop packages that are in .venv but not in the lock (installed by hand).
extra="$("$VENV/bin/python" - "$LOCK" <<'PY'
import re, sys
from importlib.metadata import distributions

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

locked = set()
with open(sys.argv[1]) as f:
    for line in f:
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if m:
            locked.add(norm(m.group(1)))
keep = locked | {"pip", "setuptools", "wheel", "liveclass"}
extra = sorted({norm(d.metadata["Name"]) for d in distributions() if d.metadata["Name"]} - keep)
print(" ".join(extra))
PY
)"
if [[ -n "$extra" ]]; then
    log "removing packages not in requirements.lock: $extra"
    # shellcheck disable=SC2086
    "${PIP[@]}" uninstall --quiet --yes $extra
fi

log "installing liveclass (editable, --no-deps)"
"${PIP[@]}" install --quiet --no-deps -e "$ROOT"

"${PIP[@]}" check >&2 || die "pip check failed"

if [[ "$RUNTIME" -eq 0 ]]; then
    log "keeping wheels of $(basename "$RUNTIME_LOCK") and ${BUILD_BACKEND[*]} in ${WHEELS#"$ROOT"/}"
    rm -rf "$WHEELS"
    "${PIP[@]}" wheel --quiet --require-hashes --no-deps -r "$RUNTIME_LOCK" -w "$WHEELS"
    "${PIP[@]}" wheel --quiet "${BUILD_BACKEND[@]}" -w "$WHEELS"
fi

printf '%s\n' "$expected_stamp" >"$STAMP"
log "done: .venv matches $(basename "$LOCK")"
