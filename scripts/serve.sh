#!/usr/bin/env bash
# Quick start: install only what the server needs into .venv (requirements-runtime.lock: no Node.js,
# no test toolchain) and run the dev server.
# Extra arguments go to `liveclass serve`, e.g. `bash scripts/serve.sh --port 9000`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/bootstrap.sh" --runtime
exec "$ROOT/.venv/bin/liveclass" serve --dev "$@"
