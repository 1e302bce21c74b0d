#!/usr/bin/env bash
# Quick start: bootstrap .venv (Python deps only) and run the dev server.
# Extra arguments go to `liveclass serve`, e.g. `bash scripts/serve.sh --port 9000`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/liveclass" serve --dev "$@"
