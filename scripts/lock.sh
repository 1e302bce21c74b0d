#!/usr/bin/env bash
# Regenerate requirements.lock (runtime + test + bench + loadtest + tracing extras, pinned, with hashes).
# Uses uv 0.13.9 from a throwaway venv unless that exact uv is already on PATH.
set -euo pipefail

UV_VERSION="0.13.9"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
uv_bin=""
if command -v uv >/dev/null 2>&1 && [[ "$(uv --version 2>/dev/null)" == "uv ${UV_VERSION}"* ]]; then
    uv_bin="$(command -v uv)"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "lock: installing uv==${UV_VERSION} into a throwaway venv" >&2
    "$PYTHON" -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install --quiet --disable-pip-version-check "uv==${UV_VERSION}"
    uv_bin="$tmp/venv/bin/uv"
fi

"$uv_bin" pip compile pyproject.toml \
    --extra test --extra bench --extra loadtest --extra tracing \
    --generate-hashes \
    --python-version 3.11 \
    -o requirements.lock "$@" >/dev/null
"$uv_bin" pip compile pyproject.toml \
    --generate-hashes \
    --python-version 3.11 \
    -o requirements-runtime.lock "$@" >/dev/null
echo "lock: wrote $ROOT/requirements.lock and $ROOT/requirements-runtime.lock (the image's)" >&2
