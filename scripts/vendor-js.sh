#!/usr/bin/env bash
# Vendor the browser app's third-party JavaScript into clients/web/vendor/: @msgpack/msgpack (its
# published minified UMD bundle) and the Yjs stack (yjs, lib0, y-protocols, y-websocket, y-utility)
# as one minified ES module, made by the pinned esbuild and loaded through the import map in clients/web/index.html. The app itself
# has no build step; this script runs only when a pinned version changes.
#
# Usage:
#   scripts/vendor-js.sh            fetch the pinned versions, verify them against vendor/SHA256SUMS, install them
#   scripts/vendor-js.sh --update   fetch, install, and rewrite vendor/SHA256SUMS (after bumping a version)
#   scripts/vendor-js.sh --check    verify the files already in vendor/ and index.html's import map (no network)
#
# Needs npm (to download the package tarballs and the pinned esbuild), python3 and sha256sum.
set -euo pipefail

# The pinned packages: <npm name> <version>. lib0 is the one version that satisfies every range the
# others ask for (yjs ^0.2.99, y-protocols ^0.2.85, y-websocket ^0.2.102, y-utility ^0.2.43).
PACKAGES=(
  "@msgpack/msgpack 3.1.3"
  "yjs 13.6.33"
  "lib0 0.2.120"
  "y-protocols 1.0.7"
  "y-websocket 3.1.0"
  "y-utility 0.1.4"
)
# @msgpack/msgpack is a classic script: <path in tarball> <name in vendor/>.
MSGPACK_FILES=(
  "package/dist.umd/msgpack.min.js msgpack.min.js"
  "package/dist.umd/msgpack.min.js.map msgpack.min.js.map"
  "package/LICENSE LICENSE.msgpack"
)
# The bare specifiers the app's modules import. One minified ES module, vendor/yjs-stack.js,
# re-exports all of them (`export * from` each: their export names do not clash), and the import map
# maps each specifier to it: Yjs exists once on the page (it must not be loaded twice), and the page
# fetches one file for the whole stack instead of ~50 (each request costs a round trip).
ESM_ENTRIES=(
  "yjs"
  "y-websocket"
  "y-protocols/auth"
  "y-utility/y-keyvalue"
)
# Bundled in through those (their licences are vendored too).
ESM_PACKAGES=("yjs" "lib0" "y-protocols" "y-websocket" "y-utility")
# Test-only: axe-core, the accessibility engine tests/e2e/test_accessibility_browser.py runs inside
# Chromium (its published axe.min.js; never served by the app), into tests/e2e/vendor/axe-core/.
TEST_PACKAGE="axe-core 4.14.1"
TEST_FILES=("axe.min.js" "LICENSE" "LICENSE-3RD-PARTY.txt")
# The bundler and minifier, pinned: same version, same input, same bytes (SHA256SUMS holds them).
ESBUILD_VERSION="0.28.2"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="$repo_root/clients/web/vendor"
sums="$vendor_dir/SHA256SUMS"
index_html="$repo_root/clients/web/index.html"
test_vendor_dir="$repo_root/tests/e2e/vendor"
test_sums="$test_vendor_dir/SHA256SUMS"

mode="install"
case "${1:-}" in
  "") ;;
  --update) mode="update" ;;
  --check) mode="check" ;;
  -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
  *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

# Offline: every vendored file matches its sum, no file is unlisted, and index.html's import map is
# the one vendor/importmap.json records.
check_vendor_dir() {
  (cd "$vendor_dir" && sha256sum --check --strict --quiet SHA256SUMS)
  python3 - "$vendor_dir" "$index_html" <<'PY'
import json, pathlib, re, sys

vendor, index = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
listed = {line.split(None, 1)[1].strip().removeprefix("*").removeprefix("./")
          for line in (vendor / "SHA256SUMS").read_text().splitlines() if line.strip()}
present = {p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file()}
unlisted = sorted(present - listed - {"SHA256SUMS", "README.md"})
if unlisted:
    sys.exit(f"error: files in vendor/ that SHA256SUMS does not list: {unlisted}")
html = index.read_text()
found = re.findall(r'<script type="importmap">(.*?)</script>', html, re.S)
if len(found) != 1:
    sys.exit(f"error: {index.name} must hold exactly one <script type=\"importmap\">")
if json.loads(found[0]) != json.loads((vendor / "importmap.json").read_text()):
    sys.exit(f"error: the import map in {index.name} differs from vendor/importmap.json; paste that file in")
PY
}

if [[ "$mode" == "check" ]]; then
  check_vendor_dir
  (cd "$test_vendor_dir" && sha256sum --check --strict --quiet SHA256SUMS)
  echo "vendor/ matches SHA256SUMS; index.html's import map matches vendor/importmap.json"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tgz" "$work/node_modules" "$work/out" "$work/entries" "$work/tools"

for entry in "${PACKAGES[@]}"; do
  read -r name version <<<"$entry"
  echo "fetching $name@$version"
  tarball="$(cd "$work/tgz" && npm pack --silent "$name@$version" | tail -n 1)"
  mkdir -p "$work/node_modules/$name"
  tar -xzf "$work/tgz/$tarball" -C "$work/node_modules/$name" --strip-components=1
done
read -r test_name test_version <<<"$TEST_PACKAGE"
echo "fetching $test_name@$test_version"
tarball="$(cd "$work/tgz" && npm pack --silent "$test_name@$test_version" | tail -n 1)"
mkdir -p "$work/test-pkg" "$work/test-out/$test_name"
tar -xzf "$work/tgz/$tarball" -C "$work/test-pkg" --strip-components=1
for file in "${TEST_FILES[@]}"; do cp "$work/test-pkg/$file" "$work/test-out/$test_name/$file"; done
echo "$test_version" >"$work/test-out/$test_name/VERSION"
echo "fetching esbuild@$ESBUILD_VERSION"
npm install --silent --no-save --no-audit --no-fund --prefix "$work/tools" "esbuild@$ESBUILD_VERSION" >/dev/null
esbuild="$work/tools/node_modules/.bin/esbuild"
[[ "$("$esbuild" --version)" == "$ESBUILD_VERSION" ]] || { echo "error: esbuild is not $ESBUILD_VERSION" >&2; exit 1; }

for entry in "${MSGPACK_FILES[@]}"; do
  read -r src dest <<<"$entry"
  src="${src#package/}"
  if [[ ! -f "$work/node_modules/@msgpack/msgpack/$src" ]]; then
    echo "error: $src is not in @msgpack/msgpack; the package layout changed" >&2
    exit 1
  fi
  cp "$work/node_modules/@msgpack/msgpack/$src" "$work/out/$dest"
done

# The entry re-exports each package module, which esbuild resolves with the package's "exports"
# under the browser conditions (browser, import, module, default). A name two of them export would
# be dropped from the union silently; esbuild's metafile lists what the bundle exports, and the
# check below wants every name each package module exports.
for spec in "${ESM_ENTRIES[@]}"; do
  printf 'export * from "%s";\n' "$spec" >>"$work/entries/yjs-stack.js"
done
(cd "$work" && "$esbuild" entries/yjs-stack.js --bundle --format=esm --platform=browser \
  --target=es2020 --minify --legal-comments=none --charset=utf8 --log-level=warning \
  --metafile=meta.json --outfile=out/yjs-stack.js)
for spec in "${ESM_ENTRIES[@]}"; do
  printf 'export * from "%s";\n' "$spec" >"$work/entries/one.js"
  (cd "$work" && "$esbuild" entries/one.js --bundle --format=esm --platform=browser \
    --log-level=error --metafile="meta-${spec//\//-}.json" --outfile=one-out.js)
done

python3 - "$work" "$work/out" "${ESM_PACKAGES[@]}" -- "${ESM_ENTRIES[@]}" <<'PY'
import json, pathlib, sys

work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
split = sys.argv.index("--")
names, entries = sys.argv[3:split], sys.argv[split + 1:]
pkgs = work / "node_modules"
exported = set(json.loads((work / "meta.json").read_text())["outputs"]["out/yjs-stack.js"]["exports"])
for spec in entries:
    meta = json.loads((work / f"meta-{spec.replace('/', '-')}.json").read_text())
    own = set(meta["outputs"]["one-out.js"]["exports"])
    if own - exported:
        sys.exit(f"error: {spec} exports {sorted(own - exported)}, which another entry exports too")
# Each package's licence and the version vendored, beside the bundle its code is in.
for name in names:
    licenses = [p for p in (pkgs / name).iterdir() if p.name.upper().startswith(("LICENSE", "LICENCE"))]
    if not licenses:
        sys.exit(f"error: {name} ships no LICENSE file")
    (out / name).mkdir(parents=True, exist_ok=True)
    for p in licenses:
        (out / name / p.name).write_bytes(p.read_bytes())
    (out / name / "VERSION").write_text(json.loads((pkgs / name / "package.json").read_text())["version"] + "\n")
importmap = {spec: "/static/vendor/yjs-stack.js" for spec in entries}
(out / "importmap.json").write_text(json.dumps({"imports": dict(sorted(importmap.items()))}, indent=2) + "\n")
PY

if [[ "$mode" == "update" ]]; then
  (cd "$work/out" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum --) >"$work/SHA256SUMS"
  (cd "$work/test-out" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum --) >"$work/TEST_SHA256SUMS"
else
  cp "$test_sums" "$work/TEST_SHA256SUMS"
  (cd "$work/test-out" && sha256sum --check --strict --quiet "$work/TEST_SHA256SUMS") ||
    { echo "error: $test_name does not match $test_sums" >&2; exit 1; }
  if [[ ! -f "$sums" ]]; then
    echo "error: $sums is missing; run with --update to record the sums" >&2
    exit 1
  fi
  cp "$sums" "$work/SHA256SUMS"
  if ! (cd "$work/out" && sha256sum --check --strict --quiet "$work/SHA256SUMS"); then
    echo "error: the downloaded packages do not match $sums" >&2
    exit 1
  fi
  if ! diff <(cd "$work/out" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) \
            <(awk '{print $2}' "$work/SHA256SUMS" | LC_ALL=C sort) >/dev/null; then
    echo "error: the downloaded packages hold other files than $sums lists; run with --update" >&2
    exit 1
  fi
fi

# Replace what an earlier run installed (the package folders), keep the hand-written README.md.
mkdir -p "$vendor_dir"
for entry in "${PACKAGES[@]}"; do
  read -r name _ <<<"$entry"
  [[ "$name" == "@msgpack/msgpack" ]] || rm -rf "${vendor_dir:?}/$name"
done
rm -rf "${vendor_dir:?}/esm" "${vendor_dir:?}/yjs-stack.js"
cp -R "$work/out/." "$vendor_dir/"
cp "$work/SHA256SUMS" "$sums"
rm -rf "${test_vendor_dir:?}/$test_name"
mkdir -p "$test_vendor_dir"
cp -R "$work/test-out/." "$test_vendor_dir/"
cp "$work/TEST_SHA256SUMS" "$test_sums"
echo "installed into ${vendor_dir#"$repo_root"/}:"
for entry in "${PACKAGES[@]}"; do echo "  $entry"; done
echo "installed into ${test_vendor_dir#"$repo_root"/}: $TEST_PACKAGE"
if ! check_vendor_dir; then
  echo "now paste clients/web/vendor/importmap.json into the <script type=\"importmap\"> of clients/web/index.html" >&2
  exit 1
fi
