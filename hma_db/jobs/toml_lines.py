"""The line on which each key of a TOML document is written.

``tomllib`` returns plain dicts with no positions, but a message about a job file is only useful
when it says where to look. This scanner reads the document line by line, following table
headers (``[tables.Invoice]``, ``[columns."Track.Name"]``), ``key = value`` lines (dotted keys
included) and one-line inline tables, and skips the inside of multi-line strings and arrays.
It never decides whether the document is valid: ``tomllib`` does that first.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KeyPath = tuple[str, ...]
_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The quoted key starting at ``text[start]`` and the index after its closing quote."""
    quote, i, out = text[start], start + 1, []
    while i < len(text) and text[i] != quote:
        if quote == '"' and text[i] == "\\" and i + 1 < len(text):
            escaped = text[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(escaped, escaped))
            i += 2
            continue
        out.append(text[i])
        i += 1
    if i >= len(text):
        raise ValueError("unterminated quoted key")
    return "".join(out), i + 1


def _keys(text: str, start: int, stop: str) -> tuple[KeyPath, int]:
    """Parse a dotted key from ``text[start:]`` up to the character ``stop`` ('=' or ']').

    Returns the key parts and the index of ``stop``; ValueError when the text is not a key.
    """
    parts: list[str] = []
    i = start
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            part, i = _quoted(text, i)
        else:
            begin = i
            while i < len(text) and text[i] in _BARE:
                i += 1
            part = text[begin:i]
            if not part:
                raise ValueError("not a key")
        parts.append(part)
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        if i < len(text) and text[i] == stop:
            return tuple(parts), i
        raise ValueError("not a key")


def _inline_keys(path: KeyPath, value_text: str, number: int, lines: dict[KeyPath, int]) -> None:
    """Record the keys of a one-line inline table (``model = { path = "m.pkl" }``)."""
    try:
        value = tomllib.loads("v = " + value_text)["v"]
    except tomllib.TOMLDecodeError:
        return
    stack = [(path, value)]
    while stack:
        prefix, item = stack.pop()
        if isinstance(item, dict):
            for name, inner in item.items():
                lines.setdefault((*prefix, name), number)
                stack.append(((*prefix, name), inner))


def _opens_multiline(value_text: str) -> str | None:
    """The closing delimiter when a value starts a string or array that continues on later lines."""
    for quote in ('"""', "'''"):
        if value_text.startswith(quote) and value_text.count(quote) == 1:
            return quote
    if value_text.startswith("["):
        try:
            tomllib.loads("v = " + value_text)
        except tomllib.TOMLDecodeError:
            return "]"
    return None


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path of a TOML document to its (1-based) line number.

    Example:
        >>> key_lines('scale = 2\\n[tables.Track]\\nscale = 0.5\\n')
        {('scale',): 1, ('tables', 'Track'): 2, ('tables',): 2, ('tables', 'Track', 'scale'): 3}
    """
    lines: dict[KeyPath, int] = {}
    prefix: KeyPath = ()
    closing: str | None = None  # inside a multi-line string or array until this is seen
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if closing is not None:
            if closing in line:
                closing = None
            continue
        if not line or line.startswith("#"):
            continue
        try:
            if line.startswith("["):
                double = line.startswith("[[")
                prefix, _ = _keys(line, 2 if double else 1, "]")
                for end in range(len(prefix), 0, -1):
                    lines.setdefault(prefix[:end], number)
                continue
            keys, equals = _keys(line, 0, "=")
        except ValueError:
            continue
        path = (*prefix, *keys)
        for end in range(len(path), len(prefix), -1):
            lines.setdefault(path[:end], number)
        value_text = line[equals + 1:].strip()
        if value_text.startswith("{"):
            _inline_keys(path, value_text, number, lines)
        closing = _opens_multiline(value_text)
    return lines
