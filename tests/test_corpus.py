"""The hostile-schema corpus (issue 13): every shape of tests/corpus/ cloned into SQLite,
PostgreSQL and MariaDB.

Each source corpus is loaded once; each shape is fitted once (``reflect(include=its tables)``,
``fit_database``) and sampled into a fresh database of each target dialect
(``sample_to_database``), which is what ``clone(source, target, include=..., scale=1)`` does
without fitting three times. A clone passes when the load succeeds, the target has the source's
primary keys, foreign keys, unique constraints and NOT NULL columns (so the load proved them),
every table has its sampled row count and the report (``evaluate_databases``) runs and finds no
key or foreign-key violation.

A shape that cannot be cloned today is marked ``xfail(strict=True)`` for that target with the
error seen (see ``FAILING``): the day a fix lands the test passes, strict xfail turns that into
a failure, and the mark must go. A shape that a target cannot hold may instead be refused up
front (``REFUSED``): a HmaDbError naming the table and column, raised before anything is
written.
"""

from __future__ import annotations

import re

import pytest
from corpus_shapes import (
    SHAPES,
    TARGETS,
    Shape,
    constraints,
    load_corpus,
    row_counts,
    table_names,
)

import hma_db
from hma_db import HmaDbError, HMASynthesizer

SEED = 13

# (shape id, target) -> the one-line error seen; xfail(strict=True) until a fix lands.
FAILING: dict[tuple[str, str], str] = {}

# (shape id, target) -> a pattern of the up-front refusal (a HmaDbError before any write).
REFUSED: dict[tuple[str, str], str] = {}

_SERVER_MARKS = {"postgresql": pytest.mark.postgres, "mariadb": pytest.mark.mysql}


def _case(shape: Shape, target: str):
    marks = [_SERVER_MARKS[d] for d in dict.fromkeys((shape.source, target))
             if d in _SERVER_MARKS]
    reason = FAILING.get((shape.id, target))
    if reason is not None:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(shape, target, marks=marks,
                        id=f"{shape.id}->{target}")


CASES = [_case(shape, target) for shape in SHAPES for target in TARGETS]


# ----------------------------------------------------------------------------- databases
def _new_database(dialect: str, request, hint: str) -> str:
    if dialect == "sqlite":
        path = request.getfixturevalue("tmp_path_factory").mktemp(hint) / f"{hint}.sqlite"
        return f"sqlite:///{path}"
    fixture = "postgres_databases" if dialect == "postgresql" else "mysql_databases"
    return request.getfixturevalue(fixture).new(hint)


def _corpus(dialect: str, request) -> str:
    url = _new_database(dialect, request, f"corpus_{dialect}")
    load_corpus(dialect, url)
    return url


@pytest.fixture(scope="session")
def sqlite_corpus(request) -> str:
    """URL of a SQLite database loaded with tests/corpus/sqlite.sql."""
    return _corpus("sqlite", request)


@pytest.fixture(scope="session")
def postgresql_corpus(request) -> str:
    """URL of a PostgreSQL database loaded with tests/corpus/postgresql.sql."""
    return _corpus("postgresql", request)


@pytest.fixture(scope="session")
def mariadb_corpus(request) -> str:
    """URL of a MariaDB database loaded with tests/corpus/mariadb.sql."""
    return _corpus("mariadb", request)


_FITTED: dict[str, HMASynthesizer | BaseException] = {}


def _fitted(shape: Shape, source: str) -> HMASynthesizer:
    """The shape's synthesizer, fitted once and shared by its three targets (a failed fit
    is kept and raised again for each)."""
    if shape.id not in _FITTED:
        try:
            metadata = hma_db.reflect(source, schema=shape.schema, include=shape.tables)
            _FITTED[shape.id] = HMASynthesizer(metadata, seed=SEED).fit_database(source)
        except Exception as exc:  # noqa: BLE001 - raised again below, for every target
            _FITTED[shape.id] = exc
    found = _FITTED[shape.id]
    if isinstance(found, BaseException):
        raise found
    return found


# ----------------------------------------------------------------------------- checks
def _expected_constraints(source: str, shape: Shape, target: str) -> dict:
    # MariaDB has no partial index: a partial unique index cannot be kept there.
    return constraints(source, shape.tables, shape.schema, partial=target != "mariadb")


def _key_violations(report) -> list[str]:
    """The report's failed key checks (primary key, unique, foreign key), one line each."""
    return [f"{f['table']}.{f['columns']}: {f['check']} ({f['violations']} of {f['rows']} rows)"
            for f in report.validity
            if not f["passed"] and re.match(r"primary key|unique|foreign key", f["check"])]


@pytest.mark.parametrize(("shape", "target"), CASES)
def test_corpus_shape_clones(shape: Shape, target: str, request):
    source = request.getfixturevalue(f"{shape.source}_corpus")
    synthesizer = _fitted(shape, source)
    synthesizer.reset_sampling()
    target_url = _new_database(target, request, f"corpus_{shape.name}_{target}")
    refusal = REFUSED.get((shape.id, target))
    if refusal is not None:
        with pytest.raises(HmaDbError, match=refusal):
            synthesizer.sample_to_database(target_url)
        assert table_names(target_url) == []
        return
    written = synthesizer.sample_to_database(target_url)
    assert written == synthesizer.sample_sizes(1.0)
    assert row_counts(target_url, shape.tables) == {t: written[t] for t in shape.tables}
    assert constraints(target_url, shape.tables) == _expected_constraints(source, shape, target)
    report = hma_db.evaluate_databases(source, target_url, synthesizer.get_metadata(),
                                       schema=shape.schema)
    assert _key_violations(report) == []
