#!/usr/bin/env bash
# Vendor the browser app's third-party JavaScript into clients/web/vendor/: @msgpack/msgpack (a UMD
# bundle) and the Yjs stack as plain ES modules (yjs, lib0, y-protocols, y-websocket, y-utility),
# loaded through the import map in clients/web/index.html. No bundler: files are copied as published.
#
# Usage:
#   scripts/vendor-js.sh            fetch the pinned versions, verify them against vendor/SHA256SUMS, install them
#   scripts/vendor-js.sh --update   fetch, install, and rewrite vendor/SHA256SUMS (after bumping a version)
#   scripts/vendor-js.sh --check    verify the files already in vendor/ and index.html's import map (no network)
#
# Needs npm (only to download the package tarballs; nothing is built), python3 and sha256sum.
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
# The bare specifiers the app's modules import. Everything they import in turn is found by following
# the import statements, so only the modules the page can load are vendored (into vendor/<package>/),
# and every bare specifier met on the way gets an import map entry (vendor/importmap.json).
ESM_ENTRIES=(
  "yjs"
  "y-websocket"
  "y-protocols/awareness"
  "y-protocols/auth"
  "y-utility/y-keyvalue"
  "lib0/encoding"
  "lib0/decoding"
)
# package.json "exports" conditions a browser loading ES modules matches, as a bundler targeting the
# browser would.
CONDITIONS="browser,import,module,default"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor_dir="$repo_root/clients/web/vendor"
sums="$vendor_dir/SHA256SUMS"
index_html="$repo_root/clients/web/index.html"

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
  echo "vendor/ matches SHA256SUMS; index.html's import map matches vendor/importmap.json"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/tgz" "$work/pkgs" "$work/out"

for entry in "${PACKAGES[@]}"; do
  read -r name version <<<"$entry"
  echo "fetching $name@$version"
  tarball="$(cd "$work/tgz" && npm pack --silent "$name@$version" | tail -n 1)"
  mkdir -p "$work/pkgs/$name"
  tar -xzf "$work/tgz/$tarball" -C "$work/pkgs/$name" --strip-components=1
done

for entry in "${MSGPACK_FILES[@]}"; do
  read -r src dest <<<"$entry"
  src="${src#package/}"
  if [[ ! -f "$work/pkgs/@msgpack/msgpack/$src" ]]; then
    echo "error: $src is not in @msgpack/msgpack; the package layout changed" >&2
    exit 1
  fi
  cp "$work/pkgs/@msgpack/msgpack/$src" "$work/out/$dest"
done

# Follow the imports from ESM_ENTRIES through the unpacked packages; copy what is reached.
python3 - "$work/pkgs" "$work/out" "$CONDITIONS" "${ESM_ENTRIES[@]}" <<'PY'
import json, pathlib, posixpath, re, shutil, sys

pkgs, out, conditions, entries = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]
# Static imports and re-exports (`import x from "s"`, `import "s"`, `export * from "s"`); the
# vendored packages use no dynamic import() of modules.
IMPORT = re.compile(r"""(?:^|[;\n}])\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']""")


def manifest(name):
    return json.loads((pkgs / name / "package.json").read_text())


def pick(target):
    """A package.json exports target narrowed by the browser conditions, in key order."""
    while isinstance(target, (dict, list)):
        if isinstance(target, list):
            target = next((t for t in map(pick, target) if t), None)
            continue
        for key, value in target.items():
            if key in conditions:
                target = value
                break
        else:
            return None
    return target


def resolve(spec):
    parts = spec.split("/")
    name = "/".join(parts[:2]) if spec.startswith("@") else parts[0]
    sub = "." + spec[len(name):]
    if not (pkgs / name).is_dir():
        sys.exit(f"error: {spec!r} is imported but {name} is not a pinned package; add it to PACKAGES")
    pj = manifest(name)
    exports = pj.get("exports")
    if exports is not None:
        if isinstance(exports, str) or not any(key.startswith(".") for key in exports):
            exports = {".": exports}  # the sugar for a package with only a main entry
        target = pick(exports.get(sub))
    elif sub == ".":
        target = pj.get("module") or pj.get("main")
    else:
        target = sub
    if not target:
        sys.exit(f"error: {spec!r} has no browser ES module export in {name}")
    return name, posixpath.normpath(target)


files = set()
importmap = {}
queue = []
for spec in entries:
    queue.append(("bare", spec))
while queue:
    kind, ref = queue.pop()
    if kind == "bare":
        name, path = resolve(ref)
        importmap[ref] = f"/static/vendor/{name}/{path}"
    else:
        name, path = ref
    if (name, path) in files:
        continue
    source = pkgs / name / path
    if not source.is_file():
        sys.exit(f"error: {name}/{path} is imported but not in the package")
    files.add((name, path))
    for spec in IMPORT.findall(source.read_text()):
        if spec.startswith("."):
            queue.append(("file", (name, posixpath.normpath(posixpath.join(posixpath.dirname(path), spec)))))
        else:
            queue.append(("bare", spec))

for name, path in sorted(files):
    dest = out / name / path
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pkgs / name / path, dest)
    mapped = re.search(r"//# sourceMappingURL=(\S+)\s*$", (pkgs / name / path).read_text())
    if mapped and (pkgs / name / posixpath.dirname(path) / mapped.group(1)).is_file():
        shutil.copyfile(pkgs / name / posixpath.dirname(path) / mapped.group(1), dest.parent / mapped.group(1))
for name in sorted({name for name, _ in files}):
    licenses = [p for p in (pkgs / name).iterdir() if p.name.upper().startswith(("LICENSE", "LICENCE"))]
    if not licenses:
        sys.exit(f"error: {name} ships no LICENSE file")
    for p in licenses:
        shutil.copyfile(p, out / name / p.name)
    (out / name / "VERSION").write_text(manifest(name)["version"] + "\n")
(out / "importmap.json").write_text(json.dumps({"imports": dict(sorted(importmap.items()))}, indent=2) + "\n")
PY

if [[ "$mode" == "update" ]]; then
  (cd "$work/out" && find . -type f | LC_ALL=C sort | sed 's|^\./||' | xargs sha256sum --) >"$work/SHA256SUMS"
else
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
cp -R "$work/out/." "$vendor_dir/"
cp "$work/SHA256SUMS" "$sums"
echo "installed into ${vendor_dir#"$repo_root"/}:"
for entry in "${PACKAGES[@]}"; do echo "  $entry"; done
if ! check_vendor_dir; then
  echo "now paste clients/web/vendor/importmap.json into the <script type=\"importmap\"> of clients/web/index.html" >&2
  exit 1
fi
