"""The web app's files: content-hashed names, the rendered import map, gzip and cache headers."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from websockets.datastructures import Headers

from signaling.static_site import IMMUTABLE, REVALIDATE, StaticSite, accepts_gzip, hashed_name

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="/static/styles.css">
<script type="importmap">{"imports": {"yjs": "/static/vendor/yjs.mjs"}}</script>
</head><body><script type="module" src="/static/app.js"></script></body></html>"""


@pytest.fixture
def site(tmp_path: Path) -> StaticSite:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "views").mkdir()
    (tmp_path / "index.html").write_text(PAGE)
    (tmp_path / "plain.html").write_text('<html><head></head><body><a href="/static/x">')
    (tmp_path / "styles.css").write_text("body { color: black; }\n" * 40)
    (tmp_path / "app.js").write_text('import "./views/chat.js";\n' + "// padding\n" * 50)
    (tmp_path / "views" / "chat.js").write_text('import * as Y from "yjs";\n')
    (tmp_path / "vendor" / "yjs.mjs").write_text("export const Doc = 1;\n")
    (tmp_path / "vendor" / "importmap.json").write_text(
        json.dumps({"imports": {"yjs": "/static/vendor/yjs.mjs"}})
    )
    return StaticSite(tmp_path)


def test_a_hashed_name_keeps_folder_and_suffix_and_changes_with_the_bytes() -> None:
    a = hashed_name("views/chat.js", b"one")
    assert re.fullmatch(r"views/chat\.[0-9a-f]{12}\.js", a)
    assert hashed_name("views/chat.js", b"two") != a
    assert re.fullmatch(r"msgpack\.min\.[0-9a-f]{12}\.js", hashed_name("msgpack.min.js", b""))


@pytest.mark.parametrize(
    ("field", "takes"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*, gzip;q=0", False),
        ("", False),
        ("gzip;q=junk", False),
    ],
)
def test_accept_encoding_is_read_with_its_q_values(field: str, takes: bool) -> None:
    assert accepts_gzip(field) is takes


def test_the_page_points_at_hashed_urls_through_its_import_map(site: StaticSite) -> None:
    html = site.page_texts()[0]
    app, chat, yjs = site.url("app.js"), site.url("views/chat.js"), site.url("vendor/yjs.mjs")
    assert f'src="{app}"' in html and f'href="{site.url("styles.css")}"' in html
    found = re.search(r'<script type="importmap">(.*?)</script>', html, re.S)
    assert found is not None and html.count('type="importmap"') == 1
    imports = json.loads(found.group(1))["imports"]
    # Bare specifiers and every module's plain URL (what a relative import resolves to).
    assert imports["yjs"] == yjs
    assert imports["/static/views/chat.js"] == chat
    assert imports["/static/app.js"] == app


def test_a_page_without_modules_gets_no_import_map(site: StaticSite) -> None:
    (plain,) = [page for page in site.page_texts() if "<a " in page]
    assert "importmap" not in plain


def test_a_hashed_file_is_immutable_and_a_plain_one_revalidated(site: StaticSite) -> None:
    hashed = site.file(site.url("app.js").removeprefix("/static/"), Headers())
    plain = site.file("app.js", Headers())
    assert hashed is not None and plain is not None
    assert hashed.headers["Cache-Control"] == IMMUTABLE
    assert plain.headers["Cache-Control"] == REVALIDATE
    assert hashed.body == plain.body and hashed.body.startswith(b"import")
    assert site.file("no-such.js", Headers()) is None
    assert site.file("index.html", Headers()) is None  # pages only by their routes


def test_gzip_is_sent_only_to_a_client_that_takes_it(site: StaticSite) -> None:
    squeezed = site.file("styles.css", Headers({"Accept-Encoding": "gzip"}))
    raw = site.file("styles.css", Headers())
    assert squeezed is not None and raw is not None
    assert squeezed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(squeezed.body) == raw.body
    assert len(squeezed.body) < len(raw.body)
    assert "Content-Encoding" not in raw.headers
    assert squeezed.headers["Vary"] == raw.headers["Vary"] == "Accept-Encoding"
    assert squeezed.headers["ETag"] != raw.headers["ETag"]


def test_the_page_is_revalidated_and_answers_304_to_its_etag(site: StaticSite) -> None:
    first = site.page("index.html", Headers({"Accept-Encoding": "gzip"}))
    assert first is not None and first.status_code == 200
    assert first.headers["Cache-Control"] == REVALIDATE
    again = site.page(
        "index.html",
        Headers({"Accept-Encoding": "gzip", "If-None-Match": first.headers["ETag"]}),
    )
    assert again is not None and again.status_code == 304 and again.body == b""
    assert site.page("missing.html", Headers()) is None


def test_the_page_preloads_every_module_its_entry_imports_after_the_import_map(
    site: StaticSite,
) -> None:
    html = site.page_texts()[0]
    assert site.imports_of(["app.js"]) == ["app.js", "views/chat.js", "vendor/yjs.mjs"]
    preloads = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert preloads == [site.url("views/chat.js"), site.url("vendor/yjs.mjs")]
    assert html.index('type="importmap"') < html.index("modulepreload")


WEB = Path(__file__).resolve().parents[2] / "clients" / "web"


def test_the_apps_modules_are_sent_minified_with_their_literals_as_written(tmp_path: Path) -> None:
    source = (
        "/** Doc. */\nexport function f(a) {\n    return a; // why\n}\n"
        'const url = "http://example.org/*x*/";\n'
        "const t = `a // b ${x}`;\n"
        "const re = /[/]*\\/\\/(?:x)/g;\n"
    )
    (tmp_path / "vendor").mkdir()
    (tmp_path / "m.js").write_text(source)
    (tmp_path / "vendor" / "v.js").write_text(source)
    site = StaticSite(tmp_path)
    sent = site.file("m.js", Headers()).body.decode()  # type: ignore[union-attr]
    assert "// why" not in sent and "Doc." not in sent and "\n    " not in sent
    for literal in ('"http://example.org/*x*/"', "`a // b ${x}`", "/[/]*\\/\\/(?:x)/g"):
        assert literal in sent
    vendored = site.file("vendor/v.js", Headers())
    assert vendored is not None and vendored.body.decode() == source  # its sums must hold


def test_every_module_of_the_app_keeps_its_imports_when_sent() -> None:
    site = StaticSite(WEB)
    modules = [p.relative_to(WEB).as_posix() for p in WEB.rglob("*.js")]
    modules = [m for m in modules if not m.startswith("vendor/")]
    assert len(modules) > 20
    for relative in modules:
        source = (WEB / relative).read_text()
        response = site.file(relative, Headers())
        assert response is not None
        sent = response.body.decode()
        assert len(sent) < len(source), relative
        # The page's module graph (modulepreload) is read from the sent text.
        wanted = re.findall(r"""^import .*?["']([^"']+)["'];?$""", source, re.M)
        for specifier in wanted:
            assert f'"{specifier}"' in sent or f"'{specifier}'" in sent, (relative, specifier)
