"""Comments and indentation leave the app's modules; strings, templates and regular expressions
stay exactly as written, and line breaks stay where automatic semicolon insertion needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from signaling.js_comments import strip_comments

WEB = Path(__file__).resolve().parents[2] / "clients" / "web"


@pytest.mark.parametrize(
    ("source", "served"),
    [
        (
            "/** Doc.\n * @param {x} a\n */\nexport function f(a) {\n    return a; // why\n}\n",
            "export function f(a) {\nreturn a;\n}\n",
        ),
        (
            'const url = "http://example.org/*x*/"; // a\n',
            'const url = "http://example.org/*x*/";\n',
        ),
        ("const s = 'it\\'s // not a comment';\n", "const s = 'it\\'s // not a comment';\n"),
        (
            "const t = `a // b\n    ${x /* y */ + `in ${z}`} /* c */`;\n",
            "const t = `a // b\n    ${x + `in ${z}`} /* c */`;\n",
        ),
        ("const re = /[/]*\\/\\/(?:x)/g; // tail\n", "const re = /[/]*\\/\\/(?:x)/g;\n"),
        ("return /a\\/b/.test(s);\n", "return /a\\/b/.test(s);\n"),
        ("const half = total / 2 / count; // two divisions\n", "const half = total / 2 / count;\n"),
        ("const h = (a + b) / 2;\n", "const h = (a + b) / 2;\n"),
        ("a = b /* one line */ + c;\n", "a = b + c;\n"),
        ("a = b /* across\n lines */\nc()\n", "a = b\nc()\n"),
        ("if (x) { y(); }\n\n\n  z();\n", "if (x) { y(); }\nz();\n"),
    ],
)
def test_comments_and_indentation_go_and_literals_stay(source: str, served: str) -> None:
    assert strip_comments(source) == served


@pytest.mark.parametrize("source", ["a = 'open\n", "t = `open", "/* open", "x = /open\n"])
def test_an_unterminated_literal_or_comment_is_refused(source: str) -> None:
    with pytest.raises(ValueError):
        strip_comments(source)


def test_every_module_of_the_app_is_read_to_its_end_and_keeps_its_literals() -> None:
    modules = [p for p in WEB.rglob("*.js") if "vendor" not in p.relative_to(WEB).parts]
    assert len(modules) > 20
    for path in modules:
        source = path.read_text()
        served = strip_comments(source)
        assert len(served) < len(source), path
        # Every import survives (the page's module graph is read from the served text).
        assert served.count("import ") >= source.count("\nimport "), path
