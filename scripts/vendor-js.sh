#!/usr/bin/env bash
# Vendor the browser app's only third-party JavaScript, @msgpack/msgpack, into clients/web/vendor/.
#
# Usage:
#   scripts/vendor-js.sh            fetch the pinned version, verify it against vendor/SHA256SUMS, install it
#   scripts/vendor-js.sh --update   fetch, install, and rewrite vendor/SHA256SUMS (after bumping VERSION)
#   scripts/vendor-js.sh --check    verify the files already in vendor/ (no network)
#
# Needs npm (only to download the package tarball; nothing is built) and sha256sum.
set -euo pipefail

PACKAGE="@msgpack/msgpack"
VERSION="3.1.3"
# Files taken from the package tarball: <path in tarball> <name in vendor/>.
FILES=(
  "package/dist.umd/msgpack.min.js msgpack.min.js"
  "package/dist.umd/msgpack.min.js.map msgpack.min.js.map"
  "package/LICENSE LICENSE.msgpack"
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="$repo_root/clients/web/vendor"
sums="$vendor_dir/SHA256SUMS"

mode="install"
case "${1:-}" in
  "") ;;
  --update) mode="update" ;;
  --check) mode="check" ;;
  -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
  *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

if [[ "$mode" == "check" ]]; then
  (cd "$vendor_dir" && sha256sum --check --strict SHA256SUMS)
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "fetching $PACKAGE@$VERSION"
tarball="$(cd "$work" && npm pack --silent "$PACKAGE@$VERSION" | tail -n 1)"
mkdir "$work/x"
tar -xzf "$work/$tarball" -C "$work/x"

mkdir "$work/out"
for entry in "${FILES[@]}"; do
  read -r src dest <<<"$entry"
  if [[ ! -f "$work/x/$src" ]]; then
    echo "error: $src is not in $tarball; the package layout changed" >&2
    exit 1
  fi
  cp "$work/x/$src" "$work/out/$dest"
done

if [[ "$mode" == "update" ]]; then
  (cd "$work/out" && sha256sum -- *) >"$work/SHA256SUMS"
else
  if [[ ! -f "$sums" ]]; then
    echo "error: $sums is missing; run with --update to record the sums" >&2
    exit 1
  fi
  cp "$sums" "$work/SHA256SUMS"
  if ! (cd "$work/out" && sha256sum --check --strict --quiet "$work/SHA256SUMS"); then
    echo "error: $PACKAGE@$VERSION does not match $sums" >&2
    exit 1
  fi
fi

mkdir -p "$vendor_dir"
for entry in "${FILES[@]}"; do
  read -r _ dest <<<"$entry"
  cp "$work/out/$dest" "$vendor_dir/$dest"
done
cp "$work/SHA256SUMS" "$sums"
echo "installed $PACKAGE@$VERSION into ${vendor_dir#"$repo_root"/}:"
cat "$sums"
