"""The web app's own modules without their comments and indentation, as the server sends them.

The app's modules are written to be read (JSDoc on every function): comments and indentation are
a third of their gzip size, and on a slow link every kilobyte is 20 ms (400 kbit/s). The server
drops them when it reads the files (:mod:`signaling.static_site`); the files on disk, and the
code, are unchanged: this is no minifier (no renaming, no rewriting), only a scanner that knows
where comments can start (ECMA-262, "Lexical Grammar": strings, template literals with their
``${}`` substitutions, regular expression literals, comments).

Line breaks are kept where they were (a block comment that spanned lines leaves one), so automatic
semicolon insertion sees the same program.
"""

from __future__ import annotations

import re

# After one of these a `/` starts a regular expression literal, after anything else a division
# (ECMA-262 section 12, the InputElementRegExp goal): punctuators that end nothing, and keywords
# that take an expression.
_REGEX_AFTER_KEYWORD = frozenset(
    "return typeof instanceof in of new delete void throw case do else yield await".split()
)
_ENDS_OPERAND = frozenset(")]}\"'`")
_WORD = re.compile(r"[A-Za-z0-9_$]+$")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$]")
# A run of code in which no comment, literal, brace or blank can start: copied in one step.
_PLAIN = re.compile(r"[^\n \t\r/'\"`{}]+")


def strip_comments(source: str) -> str:
    """``source`` (an ES module) without comments, indentation, trailing blanks or empty lines.

    Strings, template literals (their text, not their substitutions) and regular expression
    literals are copied as they are. A block comment becomes a line break if it held one, else a
    space.

    Raises:
        ValueError: the source ends inside a string, template, regular expression or comment.
    """
    out: list[str] = []
    braces: list[bool] = []  # True: the `}` closing it resumes a template literal
    i, n = 0, len(source)

    def last_significant() -> str:
        for chunk in reversed(out):
            stripped = chunk.rstrip()
            if stripped:
                return stripped
        return ""

    def newline() -> None:
        while out and out[-1] in (" ", "\t"):
            out.pop()
        if out and out[-1] != "\n":
            out.append("\n")

    def template(start: int) -> int:
        """Copy template text from ``start`` (after a backtick or a closing ``}``) to its end or
        to a ``${``; return the index after what was copied."""
        j = start
        while j < n:
            c = source[j]
            if c == "\\":
                j += 2
                continue
            if c == "`":
                out.append(source[start : j + 1])
                return j + 1
            if c == "$" and source.startswith("${", j):
                out.append(source[start : j + 2])
                braces.append(True)
                return j + 2
            j += 1
        raise ValueError("unterminated template literal")

    while i < n:
        plain = _PLAIN.match(source, i)
        if plain is not None:
            out.append(plain.group())
            i = plain.end()
            continue
        c = source[i]
        if c == "\n":
            newline()
            i += 1
            while i < n and source[i] in " \t\r":
                i += 1
            continue
        if c in " \t\r":
            if out and out[-1] not in (" ", "\n"):
                out.append(" ")
            i += 1
            continue
        if source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
            continue
        if source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            if "\n" in source[i:end]:
                newline()
            elif out and out[-1] not in (" ", "\n"):
                out.append(" ")
            i = end + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n and source[j] != c:
                if source[j] == "\n":
                    raise ValueError("unterminated string literal")
                j += 2 if source[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated string literal")
            out.append(source[i : j + 1])
            i = j + 1
            continue
        if c == "`":
            i = template(i + 1)
            out[-1] = "`" + out[-1]
            continue
        if c == "{":
            braces.append(False)
        elif c == "}" and braces:
            if braces.pop():
                i = template(i + 1)
                out[-1] = "}" + out[-1]
                continue
        elif c == "/" and _starts_regex(last_significant()):
            j, in_class = i + 1, False
            while j < n and (in_class or source[j] != "/"):
                if source[j] == "\n":
                    raise ValueError("unterminated regular expression literal")
                if source[j] == "\\":
                    j += 1
                elif source[j] == "[":
                    in_class = True
                elif source[j] == "]":
                    in_class = False
                j += 1
            if j >= n:
                raise ValueError("unterminated regular expression literal")
            j += 1
            while j < n and _IDENT_CHAR.match(source[j]):
                j += 1
            out.append(source[i:j])
            i = j
            continue
        out.append(c)
        i += 1
    newline()
    return "".join(out).lstrip("\n")


def _starts_regex(before: str) -> bool:
    """Whether a ``/`` after ``before`` (the code emitted so far, ending in a token) starts a
    regular expression literal rather than a division."""
    if not before:
        return True
    last = before[-1]
    word = _WORD.search(before)
    if word is not None:
        return word.group() in _REGEX_AFTER_KEYWORD
    return last not in _ENDS_OPERAND
