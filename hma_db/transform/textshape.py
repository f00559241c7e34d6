"""The shape of a free-text column beyond its lengths: character classes and capitalization.

What is learned is a shape, never a value:

- **codes** (values without spaces that hold a digit: a phone extension '5467', a reference
  'AB-1234'): the *templates* of the values, each character replaced by its class ('9' a digit,
  'A' an upper-case letter, 'a' a lower-case one, anything else kept), with how often each
  template occurs. Generated codes follow a template drawn in those proportions, a random
  character of the class in each place, so digits stay digits and a 'varchar(4)' of digits
  gets digits, not 'towa'.
- **case** of word text: the capitalization most source values share ('lower', 'upper',
  'title', 'first': first letter capital), given to the generated words.

Generation is vectorized: templates become a code-point matrix and every class position is
filled from one matrix of random draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_SAMPLE = 10_000  # values looked at to learn a shape
MAX_TEMPLATES = 50  # templates kept, the most frequent first (a code column has a few)
CODE_SHARE = 0.95  # values that must look like codes for the column to be one
_FILL = {"9": "0123456789", "A": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "a": "abcdefghijklmnopqrstuvwxyz"}


def _templates(text: pd.Series) -> pd.Series:
    """Each value with its digits as '9', upper-case letters as 'A', lower-case ones as 'a'."""
    return (text.str.replace(r"[0-9]", "9", regex=True)
            .str.replace(r"[A-Z]", "A", regex=True).str.replace(r"[a-z]", "a", regex=True))


def _case(text: pd.Series) -> str | None:
    words = text[text.str.contains(r"[A-Za-z]", regex=True)]
    if words.empty:
        return None
    kinds = np.select([words.str.islower(), words.str.isupper(), words.str.istitle(),
                       words.str.match(r"^[^A-Za-z]*[A-Z]")],
                      ["lower", "upper", "title", "first"], "mixed")
    mode = pd.Series(kinds).mode().iloc[0]
    return None if mode == "mixed" else str(mode)


def learn(values: pd.Series) -> dict[str, Any]:
    """``{'codes': [[template, count], ...]}`` for a column of codes, else ``{'case': ...}``."""
    text = values.iloc[:_SAMPLE].astype(str)
    if text.empty:
        return {}
    coded = ~text.str.contains(r"\s", regex=True) & text.str.contains(r"[0-9]", regex=True)
    if coded.mean() >= CODE_SHARE:
        counts = _templates(text[coded]).value_counts().iloc[:MAX_TEMPLATES]
        return {"codes": [[str(t), int(c)] for t, c in counts.items()]}
    case = _case(text)
    return {"case": case} if case else {}


def codes(spec: dict[str, Any], n: int, rng: np.random.Generator,
          max_length: int | None) -> np.ndarray:
    """``n`` codes following the learned templates (cut to ``max_length``, which the source's
    templates already fit)."""
    templates = [t[:max_length] if max_length else t for t, _ in spec["codes"]]
    weights = np.array([c for _, c in spec["codes"]], dtype=float)
    width = max(1, max(len(t) for t in templates))
    table = np.zeros((len(templates), width), dtype=np.uint32)
    for i, template in enumerate(templates):  # a few dozen templates, not rows
        table[i, :len(template)] = np.frombuffer(template.encode("utf-32-le"), dtype=np.uint32)
    matrix = table[rng.choice(len(templates), size=n, p=weights / weights.sum())]
    draws = rng.random((n, width))
    for cls, alphabet in _FILL.items():
        points = np.frombuffer(alphabet.encode("utf-32-le"), dtype=np.uint32)
        where = matrix == ord(cls)
        matrix[where] = points[(draws[where] * len(points)).astype(np.int64)]
    return np.ascontiguousarray(matrix).view(f"<U{width}").ravel().astype(object)


def with_case(words: np.ndarray, case: str | None) -> np.ndarray:
    """Generated words with the source's capitalization."""
    if not case or case == "lower":
        return words
    text = pd.Series(words, dtype=object).str
    made = {"upper": text.upper, "title": text.title, "first": text.capitalize}[case]()
    return made.to_numpy(dtype=object)
