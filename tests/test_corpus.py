"""The hostile-schema corpus (issue 13): every shape of tests/corpus/ cloned into SQLite,
PostgreSQL and MariaDB.

Each source corpus is loaded once; each shape is fitted once (``reflect(include=its tables)``,
``fit_database``) and sampled into a fresh database of each target dialect
(``sample_to_database``), which is what ``clone(source, target, include=..., scale=1)`` does
without fitting three times. A clone passes when the load succeeds, the target has the source's
primary keys, foreign keys, unique constraints and NOT NULL columns (so the load proved them),
a same-dialect target declares every column as the source does (domains, partitioned tables),
every table has its sampled row count (and on SQLite, which stores what it is given, numeric
columns hold numbers) and the report (``evaluate_databases``) runs and finds no
key or foreign-key violation.

A shape that cannot be cloned today is marked ``xfail(strict=True)`` for that target with the
error seen (see ``FAILING``): the day a fix lands the test passes, strict xfail turns that into
a failure, and the mark must go. A shape that a target cannot hold may instead be refused up
front (``REFUSED``): a HmaDbError naming the table and column, raised before anything is
written.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from corpus_shapes import (
    SHAPES,
    TARGETS,
    Shape,
    column_types,
    constraints,
    differences,
    insert_without_defaults,
    load_corpus,
    row_counts,
    schema_facts,
    split_statements,
    sqlite_type_mismatches,
    table_names,
    type_differences,
)

import hma_db
from hma_db import HmaDbError, HMASynthesizer

SEED = 13
# Seconds a shape may take to fit, and then to sample, write and report into one target; beyond
# them the test fails (a corpus run must stay within minutes, and a shape that is slow is a bug).
FIT_SECONDS = 10
CLONE_SECONDS = 15

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


def _server_targets(dialect: str, request) -> dict[str, str]:
    # One target database per source corpus, shared by its shapes (their tables have distinct
    # names): a PostgreSQL DROP DATABASE costs a checkpoint, about a second, per shape otherwise.
    return {source: _new_database(dialect, request, f"corpus_{source}_into")
            for source in TARGETS}


@pytest.fixture(scope="session")
def postgresql_targets(request) -> dict[str, str]:
    """{source dialect: URL of an empty PostgreSQL database that its shapes are cloned into}."""
    return _server_targets("postgresql", request)


@pytest.fixture(scope="session")
def mariadb_targets(request) -> dict[str, str]:
    """{source dialect: URL of an empty MariaDB database that its shapes are cloned into}."""
    return _server_targets("mariadb", request)


def _target(shape: Shape, target: str, request) -> str:
    if target == "sqlite":
        return _new_database("sqlite", request, f"corpus_{shape.name}")
    return request.getfixturevalue(f"{target}_targets")[shape.source]


@contextmanager
def _within(seconds: float, what: str) -> Iterator[None]:
    """Raise TimeoutError in the block once ``seconds`` have passed (SIGALRM: the main thread)."""
    def expired(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_FITTED: dict[str, HMASynthesizer | BaseException] = {}


def _fitted(shape: Shape, source: str) -> HMASynthesizer:
    """The shape's synthesizer, fitted once and shared by its three targets (a failed fit
    is kept and raised again for each)."""
    if shape.id not in _FITTED:
        try:
            with _within(FIT_SECONDS, f"fitting {shape.id}"):
                metadata = hma_db.reflect(source, schema=shape.schema, include=shape.tables)
                _FITTED[shape.id] = HMASynthesizer(metadata, seed=SEED).fit_database(source)
        except Exception as exc:  # noqa: BLE001 - raised again below, for every target
            _FITTED[shape.id] = exc
    found = _FITTED[shape.id]
    if isinstance(found, BaseException):
        raise found
    return found


# ----------------------------------------------------------------------------- checks
_SOURCE_CONSTRAINTS: dict[str, dict] = {}


def _expected_constraints(source: str, shape: Shape) -> dict:
    """The source's constraints of the shape's tables, which the target must have."""
    if shape.id not in _SOURCE_CONSTRAINTS:
        _SOURCE_CONSTRAINTS[shape.id] = constraints(source, shape.tables, shape.schema)
    return _SOURCE_CONSTRAINTS[shape.id]


def _without_partial(found: dict, expected: dict) -> tuple[dict, dict]:
    """Both sides without the column sets of the source's partial unique indexes: MariaDB has
    no partial index, so a target may leave one out or make it a full UNIQUE (whose load then
    proved it)."""
    def strip(side: dict) -> dict:
        return {t: {**c, "unique": [u for u in c["unique"] if u not in expected[t]["partial"]]}
                for t, c in side.items()}

    return strip(found), strip(expected)


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
    target_url = _target(shape, target, request)
    expected = _expected_constraints(source, shape)
    refusal = REFUSED.get((shape.id, target))
    if refusal is not None:
        with pytest.raises(HmaDbError, match=refusal):
            synthesizer.sample_to_database(target_url)
        assert set(shape.tables).isdisjoint(table_names(target_url))
        return
    with _within(CLONE_SECONDS, f"cloning {shape.id} into {target}"):
        written = synthesizer.sample_to_database(target_url)
        assert written == synthesizer.sample_sizes(1.0)
        assert row_counts(target_url, shape.tables) == {t: written[t] for t in shape.tables}
        found = constraints(target_url, shape.tables)
        if target == "mariadb":
            found, expected = _without_partial(found, expected)
        assert differences(expected, found) == []
        if target == "sqlite":  # the other targets refuse a value of the wrong type at load
            assert sqlite_type_mismatches(target_url, shape.tables) == []
        if target == shape.source:  # same dialect: the source's own types (and partitions)
            changed = type_differences(column_types(source, shape.tables, shape.schema),
                                       column_types(target_url, shape.tables))
            assert not changed, "; ".join(changed)
            # ... and the rest of its schema: defaults, constraints, indexes, triggers
            wanted = schema_facts(source, shape.tables, shape.schema)
            assert schema_facts(target_url, shape.tables) == wanted
            # so the application's INSERTs that leave the defaulted columns out still work
            assert insert_without_defaults(target_url, shape.tables) == []
        report = hma_db.evaluate_databases(source, target_url, synthesizer.get_metadata(),
                                           schema=shape.schema)
        assert _key_violations(report) == []


def test_statements_split_on_semicolons_outside_quotes_and_comments():
    script = ("CREATE TABLE \"a;b\" (`c;d` INT); -- a comment; with a semicolon\n"
              "INSERT INTO t VALUES ('x;''y');\nSELECT 1")
    assert split_statements(script) == [
        'CREATE TABLE "a;b" (`c;d` INT)', "INSERT INTO t VALUES ('x;''y')", "SELECT 1"]
