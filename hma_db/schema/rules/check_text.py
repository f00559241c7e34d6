"""A database CHECK's SQL text read into rules the synthesizer keeps.

Reads the forms that say something about one row's columns and values: comparisons of a column
with a value (``price >= 0``) or with another column (``shipped_date >= order_date``),
``BETWEEN``, ``IN`` lists (PostgreSQL's ``= ANY (ARRAY[...])`` too), conjunctions with ``AND``,
and ``col IS NULL OR ...`` (a rule already lets NULLs pass, as a CHECK does). PostgreSQL's casts
(``(0)::numeric``) are dropped. Anything else (a function call, ``<>``, any other ``OR``) does not
translate: the CHECK is then ``translated=False`` and the sampler has the target database
evaluate it on the sampled rows (:mod:`hma_db.synthesizer.database`). The conjuncts that do
translate are kept as rules even then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hma_db.schema.constraints import Constraint, Inequality
from hma_db.schema.rules.scalar import AllowedValues, ScalarInequality, ScalarRange

_CAST = r"::\s*(?:double\s+precision|character\s+varying|time(?:stamp)?\s+with(?:out)?\s+time\s+zone|\"[^\"]+\"|[A-Za-z_]\w*)(?:\s*\(\s*\d+(?:\s*,\s*\d+)?\s*\))?(?:\[\])*"  # noqa: E501
_TOKEN = re.compile(r"""
    (?P<str>'(?:[^']|'')*')
  | (?P<id>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]+\])
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][\w$]*)
  | (?P<op><>|!=|<=|>=|[=<>(),\-\[\]])
  | (?P<ws>\s+)
""", re.X)
_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">="}


@dataclass
class CheckRules:
    """What one CHECK became: its rules, and whether they say all it says."""

    text: str
    rules: list[Constraint] = field(default_factory=list)
    translated: bool = False
    name: str | None = None

    def label(self) -> str:
        return f"CHECK {self.name} ({self.text})" if self.name else f"CHECK ({self.text})"


class _Untranslated(Exception):
    """A part of the CHECK this reader does not turn into a rule."""


def _tokens(text: str) -> list[tuple[str, str]]:
    text = re.sub(_CAST, "", text)
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _Untranslated(text[pos:])
        if match.lastgroup != "ws":
            out.append((match.lastgroup, match.group()))
        pos = match.end()
    return out


class _Reader:
    """A recursive-descent reader of the tokens into ``("and"|"or"|atom, ...)`` tuples."""

    def __init__(self, tokens: list[tuple[str, str]], columns: list[str]):
        self.tokens, self.pos = tokens, 0
        self.columns = {c.lower(): c for c in columns} | {c: c for c in columns}

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else ("end", "")

    def word(self, *words: str) -> bool:
        kind, value = self.peek()
        if kind == "word" and value.lower() in words:
            self.pos += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if self.peek()[1].lower() != value:
            raise _Untranslated(f"expected {value}")
        self.pos += 1

    def expression(self) -> tuple:
        parts = [self.conjunction()]
        while self.word("or"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    def conjunction(self) -> tuple:
        parts = [self.predicate()]
        while self.word("and"):
            parts.append(self.predicate())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def predicate(self) -> tuple:
        if self.peek()[1] == "(" and not self._operand_group():
            self.pos += 1
            inner = self.expression()
            self.expect(")")
            return inner
        left = self.operand()
        if self.word("is"):
            negated = self.word("not")
            self.expect("null")
            return ("notnull" if negated else "null", left)
        if self.word("between"):
            low = self.operand()
            self.expect("and")
            return ("between", left, low, self.operand())
        if self.word("in"):
            return ("in", left, self.values())
        kind, op = self.peek()
        if kind == "op" and op in ("=", "<", "<=", ">", ">="):
            self.pos += 1
            right = self.operand()
            return ("cmp", left, op, right)
        raise _Untranslated(op or "end")

    def _operand_group(self) -> bool:
        """``(`` opening a parenthesized value such as ``(0)``, not a sub-expression."""
        kind, _ = self.peek(1)
        return kind in ("num", "str", "word", "id") and self.peek(2)[1] == ")" or \
            (self.peek(1)[1] == "-" and self.peek(3)[1] == ")")

    def operand(self) -> tuple:
        kind, value = self.peek()
        if value == "(":
            self.pos += 1
            inner = self.operand()
            self.expect(")")
            return inner
        self.pos += 1
        if value == "-" and self.peek()[0] == "num":
            self.pos += 1
            return ("value", -_number(self.tokens[self.pos - 1][1]))
        if kind == "num":
            return ("value", _number(value))
        if kind == "str":
            return ("value", value[1:-1].replace("''", "'"))
        if kind in ("word", "id") and self.peek()[1] != "(":
            name = value if kind == "word" else value[1:-1].replace('""', '"')
            column = self.columns.get(name) or self.columns.get(name.lower())
            if kind == "word" and value.lower() in ("true", "false", "null"):
                raise _Untranslated(value)
            if column is None:
                raise _Untranslated(f"unknown name {name}")
            return ("column", column)
        raise _Untranslated(value)  # a function call or anything else

    def values(self) -> list[Any]:
        self.expect("(")
        out = [self.operand()]
        while self.peek()[1] == ",":
            self.pos += 1
            out.append(self.operand())
        self.expect(")")
        if any(kind != "value" for kind, _ in out):
            raise _Untranslated("IN list of non-values")
        return [v for _, v in out]


def _number(text: str) -> int | float:
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def _any_to_in(text: str) -> str:
    """PostgreSQL's ``= ANY (ARRAY[...])`` as an ``IN`` list."""
    text = re.sub(_CAST, "", text)
    return re.sub(r"=\s*ANY\s*\(\s*\(?\s*ARRAY\s*\[([^\]]*)\]\s*\)?\s*\)", r"IN (\1)", text,
                  flags=re.I)


def _rules(node: tuple, table: str) -> list[Constraint]:
    kind = node[0]
    if kind == "and":
        return [r for part in node[1] for r in _rules(part, table)]
    if kind == "or":
        nulls = [p for p in node[1] if p[0] == "null"]
        rest = [p for p in node[1] if p[0] != "null"]
        if not nulls or len(rest) != 1:
            raise _Untranslated("OR")
        return _rules(rest[0], table)  # every rule lets a NULL pass, as the CHECK does
    if kind == "between":
        (lk, column), (k1, low), (k2, high) = node[1], node[2], node[3]
        if lk != "column" or k1 != "value" or k2 != "value":
            raise _Untranslated("BETWEEN")
        return [ScalarRange(column, low, high, table_name=table)]
    if kind == "in":
        if node[1][0] != "column":
            raise _Untranslated("IN")
        return [AllowedValues(node[1][1], node[2], table_name=table)]
    if kind == "cmp":
        return [_comparison(node[1], node[2], node[3], table)]
    raise _Untranslated(kind)


def _comparison(left: tuple, op: str, right: tuple, table: str) -> Constraint:
    if left[0] == "value" and right[0] == "column":
        left, right, op = right, left, _FLIP.get(op, op)
    if left[0] != "column":
        raise _Untranslated("comparison of values")
    if right[0] == "column":
        if op == "=" or left[1] == right[1]:
            raise _Untranslated("equal columns")
        low, high = (right[1], left[1]) if op.startswith(">") else (left[1], right[1])
        return Inequality(low, high, strict_boundaries=len(op) == 1, table_name=table)
    if op == "=":
        return AllowedValues(left[1], [right[1]], table_name=table)
    return ScalarInequality(left[1], op, right[1], table_name=table)


def rules_from_check(sqltext: str, columns: list[str], table_name: str,
                     name: str | None = None) -> CheckRules:
    """The rules a CHECK on ``table_name`` states (see the module docstring).

    Example:
        >>> rules_from_check("qty BETWEEN 1 AND 100", ["qty"], "lines").rules
        [ScalarRange(column_name='qty', low_value=1, high_value=100, ...)]
    """
    out = CheckRules(text=sqltext.strip(), name=name)
    try:
        reader = _Reader(_tokens(_any_to_in(sqltext)), columns)
        tree = reader.expression()
        if reader.peek()[0] != "end":
            raise _Untranslated("trailing text")
    except _Untranslated:
        tree = None
    if tree is not None:
        try:
            out.rules, out.translated = _rules(tree, table_name), True
        except _Untranslated:
            out.rules = _partial(tree, table_name)
    for rule in out.rules:
        rule.origin = "check"
    return out


def _partial(tree: tuple, table: str) -> list[Constraint]:
    """The conjuncts of a CHECK that translate when the whole does not."""
    parts = tree[1] if tree[0] == "and" else []
    rules = []
    for part in parts:
        try:
            rules += _rules(part, table)
        except _Untranslated:
            continue
    return rules
