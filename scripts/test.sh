#!/usr/bin/env bash
# Quick start / CI: bootstrap (with system deps), then lint, format check, type check, tests.
#
#   bash scripts/test.sh              # everything
#   bash scripts/test.sh -k roster    # extra arguments go to pytest
#
# Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
# Artifacts (junit.xml, e2e screenshots) go to artifacts/ (exported as LIVECLASS_ARTIFACTS_DIR).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! bash "$ROOT/scripts/bootstrap.sh" --system-deps; then
    echo "test.sh: FAILED: bootstrap (scripts/bootstrap.sh --system-deps) failed" >&2
    exit 1
fi

BIN="$ROOT/.venv/bin"
ARTIFACTS="$ROOT/artifacts"
rm -rf "$ARTIFACTS"
mkdir -p "$ARTIFACTS"
export LIVECLASS_ARTIFACTS_DIR="$ARTIFACTS"

results=()
failed=()

step() {
    # step NAME CMD...: run CMD, record its result, never abort the script.
    local name="$1"
    shift
    echo
    echo "==> $name: $*"
    local start=$SECONDS rc=0
    "$@" || rc=$?
    local took=$((SECONDS - start))
    if [[ "$rc" -eq 0 ]]; then
        results+=("$name=ok")
    else
        results+=("$name=FAIL(exit $rc)")
        failed+=("$name")
    fi
    echo "<== $name: exit $rc (${took}s)"
    return 0
}

run_pytest() {
    local rc=0
    "$BIN/pytest" -p no:cacheprovider -ra --junitxml="$ARTIFACTS/junit.xml" tests/ "$@" || rc=$?
    if [[ "$rc" -eq 5 ]]; then
        echo "test.sh: pytest collected no tests (exit 5); treating as a failure" >&2
    fi
    return "$rc"
}

step vendored-js bash "$ROOT/scripts/vendor-js.sh" --check
step ruff-check "$BIN/ruff" check .
step ruff-format "$BIN/ruff" format --check .
step mypy "$BIN/mypy"
step pytest run_pytest "$@"

echo
if [[ ${#failed[@]} -eq 0 ]]; then
    echo "test.sh: OK: ${results[*]}"
    exit 0
fi
echo "test.sh: FAILED (${failed[*]}): ${results[*]}"
exit 1
