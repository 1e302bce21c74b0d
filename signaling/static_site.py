"""The web app's files as browsers fetch them: content-hashed URLs, gzip, cached for good.

No build step: at startup :class:`StaticSite` reads the web root once, names every file after its
content (``views/chat.js`` is also ``/static/views/chat.3f2a9c1d0b7e.js``, twelve hex digits of
its SHA-256) and renders the pages to use those names:

- ``src`` and ``href`` attributes that point under ``/static/`` get the hashed URL;
- the page's import map (HTML Standard, "Import maps") maps each bare specifier of the vendored
  modules to its hashed URL, and every module's plain URL (``/static/views/chat.js``) to its
  hashed one. A module's relative imports resolve against its own URL to a plain URL in the same
  folder, which the import map then turns into the hashed one, so no module's text is rewritten
  and a module's name changes only when its own bytes do.

A hashed URL never changes meaning, so it is served ``Cache-Control: public, max-age=31536000,
immutable`` (RFC 8246): a returning browser takes every module from its cache without asking. A
page is served ``no-cache`` with an ETag: it is revalidated on every visit (a 304 when nothing
changed) and is the one place a new release shows up. Plain ``/static/`` URLs still work, with an
ETag and ``no-cache``. Text bodies of 256 bytes or more are also held gzip-compressed (RFC 9110
section 8.4.1.3) and sent so to a client whose ``Accept-Encoding`` takes gzip. The app's own
modules are sent minified by rjsmin (comments and blanks removed; names and code unchanged).

Everything is read once: memory is the web root's size (under 2 MB) plus its compressed copy; an
edit under ``clients/web`` shows after a restart. See docs/operations.md, "The web app's files",
and docs/decisions/0020-hashed-static-urls.md.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

import rjsmin
from websockets.datastructures import Headers
from websockets.http11 import Response

STATIC_PREFIX = "/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
HASH_HEX = 12
_GZIP_MIN_BYTES = 256
_MODULE_SUFFIXES = (".js", ".mjs")
_COMPRESSIBLE = ("text/", "application/json", "image/svg+xml")
_IMPORT_MAP = re.compile(r'(<script type="importmap">)(.*?)(</script>)', re.S)
_STATIC_ATTR = re.compile(r'\b(src|href)="/static/([^"?#]+)"')
_HEAD_END = "</head>"
_VENDOR = "vendor/"
_MODULE_SCRIPT = re.compile(r'<script type="module" src="/static/([^"?#]+)"')
# Static imports and re-exports (``import x from "s"``, ``import "s"``, ``export * from "s"``),
# minified or not. A dynamic ``import()`` is not followed: what the page loads later (the
# whiteboard, the breakout panel, the device check) is not preloaded.
_IMPORT = re.compile(
    r"""(?:^|[;\n}])\s*(?:import|export)\s*(?:[\w*{}\s,$]+?\s*from\s*)?["']([^"']+)["']"""
)
_ENCODING = re.compile(r"^\s*([a-z0-9*-]+)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$", re.I)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as served: its bytes, its gzip copy (None when not worth it), its media type
    and its strong ETag (RFC 9110 section 8.8.3; the gzip copy's ends ``-gz``)."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str

    @property
    def gzip_etag(self) -> str:
        return self.etag[:-1] + '-gz"'


def hashed_name(relative: str, body: bytes) -> str:
    """``views/chat.js`` -> ``views/chat.<12 hex of sha256(body)>.js``: the hash goes before the
    last suffix so the file keeps its type (and ``../x.js`` imports still resolve in its folder)."""
    folder, name = posixpath.split(relative)
    stem, dot, suffix = name.rpartition(".")
    digest = hashlib.sha256(body).hexdigest()[:HASH_HEX]
    hashed = f"{stem}.{digest}.{suffix}" if dot and stem else f"{name}.{digest}"
    return posixpath.join(folder, hashed)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` field value (RFC 9110 section 12.5.3) takes gzip: listed
    (or ``*``) with a q-value above 0. Unparseable members count as not listed."""
    verdict: dict[str, bool] = {}
    for member in accept_encoding.split(","):
        match = _ENCODING.match(member)
        if match is None:
            continue
        coding, q = match.group(1).lower(), match.group(2)
        try:
            verdict[coding] = q is None or float(q) > 0
        except ValueError:
            verdict[coding] = False
    if "gzip" in verdict:
        return verdict["gzip"]
    if "x-gzip" in verdict:
        return verdict["x-gzip"]
    return verdict.get("*", False)


def _served_bytes(relative: str, body: bytes) -> bytes:
    """The app's own modules minified by rjsmin (comments and blanks go; strings, template
    literals, regular expressions and names stay); vendored files exactly as vendored (their sums
    must hold), everything else as it is."""
    if not relative.endswith(_MODULE_SUFFIXES) or relative.startswith(_VENDOR):
        return body
    try:
        return str(rjsmin.jsmin(body.decode("utf-8"))).encode("utf-8")
    except UnicodeDecodeError:
        return body  # not UTF-8: sent as it is, and the browser will say what is wrong


def _content_type(path: Path) -> str:
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix in _MODULE_SUFFIXES:
        content_type = "text/javascript"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return content_type


def _asset(body: bytes, content_type: str) -> Asset:
    gzipped = None
    if len(body) >= _GZIP_MIN_BYTES and content_type.startswith(_COMPRESSIBLE):
        # mtime=0: the same bytes give the same gzip member on every start and every node.
        squeezed = gzip.compress(body, compresslevel=9, mtime=0)
        gzipped = squeezed if len(squeezed) < len(body) else None
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    return Asset(body, gzipped, content_type, etag)


class StaticSite:
    """The web root, read once: pages rendered to hashed URLs, every file under its plain and its
    hashed name.

    Args:
        root: the web app's folder (``clients/web``); its ``*.html`` files are the pages.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, Asset] = {}
        self._hashed: dict[str, str] = {}
        self._urls: dict[str, str] = {}
        for path in sorted(p for p in self.root.rglob("*") if p.is_file()):
            relative = path.relative_to(self.root).as_posix()
            if path.suffix == ".html":
                continue
            body = _served_bytes(relative, path.read_bytes())
            self._files[relative] = _asset(body, _content_type(path))
            hashed = hashed_name(relative, body)
            self._hashed[hashed] = relative
            self._urls[relative] = STATIC_PREFIX + hashed
        self.import_map = self._import_map()
        self._pages = {
            path.name: _asset(self._render(path.read_text()).encode(), "text/html; charset=utf-8")
            for path in sorted(self.root.glob("*.html"))
        }

    def url(self, relative: str) -> str:
        """The hashed URL of ``relative`` (a path under the web root, e.g. ``app.js``).

        Raises:
            KeyError: no such file.
        """
        return self._urls[relative]

    def page_texts(self) -> list[str]:
        """The rendered pages' HTML (for the CSP hashes of their inline scripts)."""
        return [page.body.decode() for page in self._pages.values()]

    def page(self, name: str, headers: Headers) -> Response | None:
        """The page ``name`` (``index.html``): revalidated on every visit. None if no such page."""
        asset = self._pages.get(name)
        return None if asset is None else _answer(asset, headers, REVALIDATE)

    def file(self, relative: str, headers: Headers) -> Response | None:
        """``/static/<relative>``: a hashed name is cached for good, a plain one revalidated.
        None if no such file."""
        original = self._hashed.get(relative)
        if original is not None:
            return _answer(self._files[original], headers, IMMUTABLE)
        asset = self._files.get(relative)
        return None if asset is None else _answer(asset, headers, REVALIDATE)

    def _import_map(self) -> dict[str, dict[str, str]]:
        """Every module's plain URL to its hashed URL, and the vendored bare specifiers
        (``vendor/importmap.json``, written by scripts/vendor-js.sh) to theirs."""
        imports: dict[str, str] = {}
        vendored = self.root / "vendor" / "importmap.json"
        if vendored.is_file():
            for specifier, target in json.loads(vendored.read_text())["imports"].items():
                imports[specifier] = self._hashed_url(target)
        for relative, url in self._urls.items():
            if relative.endswith(_MODULE_SUFFIXES):
                imports[STATIC_PREFIX + relative] = url
        return {"imports": imports}

    def _hashed_url(self, url: str) -> str:
        relative = url.removeprefix(STATIC_PREFIX)
        return self._urls.get(relative, url) if url.startswith(STATIC_PREFIX) else url

    def _render(self, html: str) -> str:
        html = _STATIC_ATTR.sub(
            lambda m: f'{m.group(1)}="{self._hashed_url(STATIC_PREFIX + m.group(2))}"', html
        )
        if 'type="module"' not in html:
            return html
        entries = [self._hashed.get(m, m) for m in _MODULE_SCRIPT.findall(html)]
        text = json.dumps(self.import_map, separators=(",", ":"), sort_keys=True)
        if _IMPORT_MAP.search(html):
            html = _IMPORT_MAP.sub(lambda m: f"{m.group(1)}\n{text}\n{m.group(3)}", html, count=1)
        else:
            html = html.replace(
                _HEAD_END, f'<script type="importmap">\n{text}\n</script>\n{_HEAD_END}'
            )
        # Every module the page will import, asked for at once (HTML Standard, "modulepreload")
        # instead of one level of the import graph per round trip; after the import map, which
        # must come before any module fetch.
        preload = [
            f'<link rel="modulepreload" href="{self._urls[relative]}">'
            for relative in self.imports_of(entries)
            if relative not in entries
        ]
        return html.replace(_HEAD_END, "".join(f"{link}\n" for link in preload) + _HEAD_END)

    def imports_of(self, entries: list[str]) -> list[str]:
        """The modules ``entries`` (paths under the web root) import, directly or not, in the
        order first met; specifiers that name no file here are left to the browser."""
        bare = self.import_map["imports"]
        seen: dict[str, None] = {}
        queue = list(entries)
        while queue:
            relative = queue.pop(0)
            asset = self._files.get(relative)
            if relative in seen or asset is None:
                continue
            seen[relative] = None
            for spec in _IMPORT.findall(asset.body.decode("utf-8", "replace")):
                if spec.startswith((".", "/")):
                    base = STATIC_PREFIX + posixpath.dirname(relative) + "/"
                    url = posixpath.normpath(posixpath.join(base, spec))
                else:
                    url = self._plain_url(bare.get(spec, ""))
                if url.startswith(STATIC_PREFIX):
                    queue.append(url.removeprefix(STATIC_PREFIX))
        return list(seen)

    def _plain_url(self, hashed_url: str) -> str:
        original = self._hashed.get(hashed_url.removeprefix(STATIC_PREFIX))
        return STATIC_PREFIX + original if original else hashed_url


def _answer(asset: Asset, request_headers: Headers, cache_control: str) -> Response:
    """200 (gzip-encoded when the client takes it) or 304 when ``If-None-Match`` names it."""
    use_gzip = asset.gzipped is not None and accepts_gzip(
        ",".join(request_headers.get_all("Accept-Encoding"))
    )
    etag = asset.gzip_etag if use_gzip else asset.etag
    headers: dict[str, Any] = {"ETag": etag, "Cache-Control": cache_control}
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if_none_match = ",".join(request_headers.get_all("If-None-Match"))
    if etag in if_none_match or if_none_match.strip() == "*":
        return Response(
            HTTPStatus.NOT_MODIFIED.value, HTTPStatus.NOT_MODIFIED.phrase, Headers(headers), b""
        )
    body = asset.body
    if use_gzip:
        assert asset.gzipped is not None
        body = asset.gzipped
        headers["Content-Encoding"] = "gzip"
    headers["Content-Type"] = asset.content_type
    headers["Content-Length"] = str(len(body))
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, Headers(headers), body)
