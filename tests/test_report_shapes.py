"""The report on value shapes the shipped databases lack (issue 13, point 5).

Drivers hand back sets (MariaDB SET), bytes and memoryviews (BLOB, GEOMETRY, bytea), dicts and
lists (JSON, arrays), Decimals, uuids, timedeltas, ranges and columns of mixed types; a foreign
key may be all NULL; a ``real`` column holds 4-byte floats. The report runs on each, compares
what it can and says what it skipped, and passes a database compared with itself.
"""

import datetime
import decimal
import json
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from psycopg.types.range import Range

from hma_db import evaluate, evaluate_databases, reflect
from hma_db.source.read import read_tables

N = 60


def _metadata(x_columns: dict) -> dict:
    """A parent table ``p`` (key, the columns under test, two plain columns) and a child ``c``."""
    return {
        "METADATA_SPEC_VERSION": "V1",
        "tables": {
            "p": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, **x_columns,
                "y": {"sdtype": "categorical"}, "z": {"sdtype": "numerical"}}},
            "c": {"primary_key": "cid", "columns": {
                "cid": {"sdtype": "id"}, "pid": {"sdtype": "id"}, "w": {"sdtype": "categorical"},
                "v": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "p", "parent_primary_key": "id",
                           "child_table_name": "c", "child_foreign_key": "pid"}]}


def _tables(x_values: dict, pid=None) -> dict[str, pd.DataFrame]:
    """Two tables; the child's foreign key ``pid`` is given, or two children per parent."""
    parent = pd.DataFrame({"id": np.arange(N), **x_values, "y": np.arange(N) % 3,
                           "z": np.linspace(0, 1, N)})
    child = pd.DataFrame({"cid": np.arange(2 * N),
                          "pid": np.arange(2 * N) % N if pid is None else pid,
                          "w": np.arange(2 * N) % 2, "v": np.arange(2 * N) / 7})
    return {"p": parent, "c": child}


def _runs_to_the_end(report, tmp_path) -> dict:
    """The report's JSON (parsed) after writing it and the HTML page."""
    report.save_html(tmp_path / "report.html")
    assert "Quality and privacy report" in (tmp_path / "report.html").read_text()
    return json.loads(report.to_json())


def _shape(report, column: str, table: str = "p") -> float:
    shapes = report.details["Column Shapes"]
    return float(shapes.loc[(shapes["Table"] == table) & (shapes["Column"] == column),
                            "Score"].iloc[0])


# ------------------------------------------------------------------------------ DataFrames
def test_set_values_are_categories_of_their_members(tmp_path):
    """MariaDB SET values come as Python sets: 'unhashable type: set' before."""
    members = [{"Trailers"}, {"Commentaries", "Trailers"}, set(), {"Deleted Scenes"}]
    real = _tables({"features": [members[i % 4] for i in range(N)]})
    # the same sets built in another order are the same categories
    synthetic = _tables({"features": [set(reversed(sorted(members[i % 4]))) for i in range(N)]})
    report = evaluate(real, synthetic, _metadata({"features": {"sdtype": "categorical"}}))
    _runs_to_the_end(report, tmp_path)
    assert _shape(report, "features") == pytest.approx(1.0)
    bars = report.distributions["columns"]["p"]["features"]["x"]
    assert "Commentaries,Trailers" in bars


def test_binary_values_are_compared_as_bytes_not_decoded(tmp_path):
    """BLOB, GEOMETRY and bytea values that are not UTF-8: astype(str) raised
    UnicodeDecodeError before; a memoryview (psycopg's bytea) equals the same bytes."""
    blobs = [bytes([i % 5, 0xFF, 0x00]) for i in range(N)]
    real = _tables({"kind": blobs, "raw": [memoryview(b) for b in blobs],
                    "email": [b"\xff@" + bytes([i]) for i in range(N)]})
    synthetic = _tables({"kind": [memoryview(b) for b in blobs], "raw": blobs,
                         "email": [b"\xff@" + bytes([i]) for i in range(N)]})
    metadata = _metadata({"kind": {"sdtype": "categorical"}, "raw": {"sdtype": "unknown"},
                          "email": {"sdtype": "email", "pii": True}})
    report = evaluate(real, synthetic, metadata)
    data = _runs_to_the_end(report, tmp_path)
    assert _shape(report, "kind") == pytest.approx(1.0)
    # the copies are found: bytes compare as bytes, a memoryview as the bytes it shows
    personal = {f["column"]: f for f in data["privacy"]["personal_data"]}
    assert personal["email"]["matches"] == N and personal["email"]["flagged"]
    copied = {f["table"]: f for f in data["privacy"]["copied_rows"]}
    assert copied["p"]["copies"] == N


def test_an_all_null_foreign_key_joins_no_parent():
    """A foreign key column that is all NULL is an object column: 'You are trying to merge on
    object and int64 columns' before."""
    metadata = _metadata({})
    nulls = pd.Series([None] * (2 * N), dtype=object)
    report = evaluate(_tables({}, nulls), _tables({}, nulls), metadata)
    assert report.details["Intertable Trends"]["Score"].isna().all()  # no joined row
    cardinality = report.details["Cardinality"]
    assert cardinality["Score"].tolist() == [1.0]  # no parent has a child, on both sides
    assert report.validity_passed


def test_a_foreign_key_of_decimals_joins_integer_parents():
    """A NUMERIC foreign key is read as Decimals (object) and its parent key as int64: the rows
    join by value, as in SQL."""
    pid = [decimal.Decimal(i % N) for i in range(2 * N)]
    metadata = _metadata({})
    report = evaluate(_tables({}, pid), _tables({}, pid), metadata)
    trends = report.details["Intertable Trends"]
    assert trends["Score"].tolist() == pytest.approx([1.0] * 4)  # y, z against w, v
    assert report.details["Cardinality"]["Score"].tolist() == [1.0]


SHAPES = {
    "set": lambda i: {"a", "b"} if i % 2 else {"c"},
    "bytes": lambda i: bytes([i % 256, 0xFF]),
    "memoryview": lambda i: memoryview(bytes([i % 7, 0xFE])),
    "dict": lambda i: {"k": i % 3, "l": [1, 2]},
    "list": lambda i: [i % 4, 1],
    "decimal": lambda i: decimal.Decimal(i) / 7,
    "uuid": lambda i: uuid.UUID(int=i % 9),
    "timedelta": lambda i: datetime.timedelta(hours=i),
    "range": lambda i: Range(i % 5, i % 5 + 3),
    "time": lambda i: datetime.time(i % 24, 30),
    "mixed": lambda i: [1, "a", 2.5, None, b"\xff", datetime.date(2020, 1, 1)][i % 6],
}
SDTYPES = ["categorical", "numerical", "datetime", "boolean", "unknown"]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_value_shape_in_every_sdtype(shape, tmp_path):
    """The same values under every sdtype, real against a shuffled copy: the report runs to its
    JSON and HTML, and what it compares is found equal (a column of one kind of value is
    compared whole; what it cannot read as a number or a datetime, it skips with a note)."""
    values = [SHAPES[shape](i) for i in range(N)]
    x = {f"x_{s}": values for s in SDTYPES}
    real = _tables(x)
    synthetic = {"p": real["p"].sample(frac=1, random_state=1).reset_index(drop=True),
                 "c": real["c"]}
    metadata = _metadata({f"x_{s}": {"sdtype": s} for s in SDTYPES})
    report = evaluate(real, synthetic, metadata)
    data = _runs_to_the_end(report, tmp_path)
    scores = report.details["Column Shapes"].set_index("Column")["Score"]
    assert scores[["x_categorical", "x_boolean"]].tolist() == pytest.approx([1.0, 1.0])
    for sdtype in ("numerical", "datetime"):
        score = scores[f"x_{sdtype}"]
        assert np.isnan(score) or score == pytest.approx(1.0), (sdtype, score)
    assert report.validity_passed, [f for f in data["validity"]["checks"] if not f["passed"]]


def test_values_that_are_not_numbers_are_skipped_with_a_note(tmp_path):
    """A numerical column holding a few words, sets and bytes: the numbers are scored and
    range-checked, the rest is counted in a note of the finding."""
    real_amount = [float(i) if i % 10 else "n/a" for i in range(N)]  # 6 words
    syn_amount = [float(i) if i % 20 else {"x"} for i in range(N)]  # 3 sets
    syn_amount[7] = {"k": [1]}  # and a JSON object
    metadata = _metadata({"amount": {"sdtype": "numerical"}})
    report = evaluate(_tables({"amount": real_amount}), _tables({"amount": syn_amount}),
                      metadata)
    data = _runs_to_the_end(report, tmp_path)
    notes = report.details["Column Shapes"].set_index("Column")["Note"]
    assert notes["amount"] == "skipped 6 real and 4 synthetic value(s) that are not numbers"
    assert notes.drop("amount").isna().all()
    assert 0.8 < _shape(report, "amount") <= 1.0
    ranges = [f for f in data["validity"]["checks"]
              if f["columns"] == ["amount"] and f["check"] == "within the real range"]
    assert ranges == [{"table": "p", "columns": ["amount"], "check": "within the real range",
                       "violations": 0, "rows": N, "passed": True,
                       "note": "skipped 4 synthetic value(s) that are not numbers"}]
    assert "p.amount: skipped 6 real" in (tmp_path / "report.html").read_text()


def test_nothing_skipped_adds_no_note():
    """Plain values: the details and findings have the columns and keys they always had."""
    metadata = _metadata({"amount": {"sdtype": "numerical"}})
    report = evaluate(_tables({"amount": np.arange(N) * 1.5}), _tables({"amount": np.arange(N)}),
                      metadata)
    assert list(report.details["Column Shapes"].columns) == ["Table", "Column", "Metric", "Score"]
    assert all("note" not in f for f in report.validity)


# ------------------------------------------------------------------------------ databases
def _execute(url: str, statements: list[str]) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def _against_itself(url: str, tmp_path, metadata=None) -> dict:
    """The report of a database compared with itself: every validity check passes."""
    report = evaluate_databases(url, url, metadata)
    data = _runs_to_the_end(report, tmp_path)
    assert report.validity_passed, [f for f in report.validity if not f["passed"]]
    assert report.score == pytest.approx(1.0)
    return data


_SQLITE = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, pic BLOB, anything, at TIME, doc TEXT, "
    "amount REAL, seen DATETIME)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id), n INT)",
    "INSERT INTO parent WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i "
    "WHERE x < 80) SELECT x, CASE x % 3 WHEN 0 THEN x'FF00' WHEN 1 THEN x'FE01' ELSE x'00FF' END, "
    "CASE x % 4 WHEN 0 THEN x WHEN 1 THEN 'text' WHEN 2 THEN x'414243' ELSE x / 3.0 END, "
    "printf('%02d:30:00', x % 21), "
    "json_object('k', x % 3), x * 1.37, "
    "CASE x % 10 WHEN 0 THEN 'unknown' ELSE datetime('2020-01-01', '+' || x || ' days') END "
    "FROM i",
    "INSERT INTO child WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i "
    "WHERE x < 50) SELECT x, NULL, x % 7 FROM i",
]


def test_sqlite_blobs_mixed_types_times_and_an_all_null_foreign_key(tmp_path):
    """A time of day in SQLite was compared with today's date (every row out of the real
    range); blobs, a column of mixed types, text in a DATETIME column (SQLAlchemy's "Couldn't
    parse datetime string") and an all-NULL foreign key crashed the report."""
    url = f"sqlite:///{tmp_path / 'shapes.sqlite'}"
    _execute(url, _SQLITE)
    metadata = reflect(url)
    assert metadata.tables["parent"]["columns"]["at"]["sdtype"] == "datetime"
    # a DATETIME column with text in it: a datetime whatever reflection makes of it
    metadata.update_column("seen", "parent", sdtype="datetime")
    data = _against_itself(url, tmp_path, metadata)
    notes = {row["Column"]: row.get("Note") for row in data["details"]["Column Shapes"]}
    assert notes["seen"] == "skipped 8 real and 8 synthetic value(s) that are not datetimes"
    target = f"sqlite:///{tmp_path / 'target.sqlite'}"
    _execute(target, [*_SQLITE, "UPDATE parent SET at = '23:59:00' WHERE id = 1"])
    report = evaluate_databases(url, target)
    assert [(f["columns"], f["violations"]) for f in report.validity if not f["passed"]] == \
        [(["at"], 1)]


_POSTGRES = [
    "CREATE TABLE orders (id int PRIMARY KEY, freight real, weight float4, raw bytea, "
    "span int4range, doc jsonb, tags text[], price numeric(10, 2), code uuid, wait interval, "
    "at time, at_zone timetz, cost money, kind text)",
    "CREATE TABLE line (id int PRIMARY KEY, order_id int REFERENCES orders (id), qty int)",
    "INSERT INTO orders SELECT i, (i * 1.37 + 0.01)::real, (i / 3.0)::float4, "
    "decode(lpad(to_hex(i * 9973 %% 65536), 4, '0') || 'ff', 'hex'), int4range(i, i + 3), "
    "jsonb_build_object('k', i %% 3, 'l', jsonb_build_array(1, 2)), ARRAY['a', (i %% 4)::text], "
    "i * 1.25, md5(i::text)::uuid, make_interval(hours => i), make_time(i %% 24, 0, 0), "
    "'10:00:00+02'::timetz + make_interval(mins => i), (i * 1.25)::money, "
    "(ARRAY['x', 'y', 'z'])[i %% 3 + 1] FROM generate_series(1, 830) i",
    "INSERT INTO line SELECT i, NULL, i %% 7 FROM generate_series(1, 200) i",
]


@pytest.mark.postgres
def test_postgresql_float4_bytea_ranges_json_arrays_against_itself(postgres_databases, tmp_path):
    """``orders.freight real``: its maximum read back as an 8-byte float is above the stored
    4-byte value once widened, so the real database failed the range check against itself."""
    url = postgres_databases.new("report_shapes")
    _execute(url, _POSTGRES)
    data = _against_itself(url, tmp_path)
    # every scored column compared whole: money read as numeric, times of day (with a zone too)
    shapes = {row["Column"]: row for row in data["details"]["Column Shapes"]}
    assert {"freight", "weight", "price", "at", "at_zone", "cost"} <= set(shapes)
    assert all(row["Score"] == 1.0 and not row.get("Note") for row in shapes.values()), shapes
    # a value truly outside the real range is still found
    target = postgres_databases.new("report_shapes_target")
    _execute(target, [*_POSTGRES, "UPDATE orders SET freight = freight * 1.001 WHERE id = 830",
                      "UPDATE orders SET weight = -0.001 WHERE id = 1"])
    report = evaluate_databases(url, target)
    assert {(f["columns"][0], f["violations"]) for f in report.validity if not f["passed"]} == \
        {("freight", 1), ("weight", 1)}


_MARIADB = [
    "CREATE TABLE film (id INT PRIMARY KEY, features SET('Trailers', 'Commentaries', "
    "'Deleted Scenes'), flags BIT(3), pic BLOB, loc POINT, price FLOAT, "
    "rating ENUM('G', 'PG', 'R'), length TIME, released YEAR, doc JSON)",
    "CREATE TABLE rental (id INT PRIMARY KEY, film_id INT NULL, amount DOUBLE, "
    "FOREIGN KEY (film_id) REFERENCES film (id))",
]


def _mariadb_rows() -> list[str]:
    features = ["Trailers", "Commentaries", "Trailers,Deleted Scenes", "",
                "Commentaries,Deleted Scenes,Trailers"]
    films = ", ".join(
        f"({i}, '{features[i % 5]}', b'{i % 8:03b}', X'{(i * 37) % 256:02x}ff00', "
        f"ST_PointFromText('POINT({i} {i / 2})'), {i * 1.2345678}, '{['G', 'PG', 'R'][i % 3]}', "
        f"'{i % 3:02d}:{i % 60:02d}:00', {1990 + i % 30}, '{{\"k\": [{i % 3}]}}')"
        for i in range(1, 81))
    rentals = ", ".join(f"({i}, NULL, {i * 0.3})" for i in range(1, 41))
    return [f"INSERT INTO film VALUES {films}", f"INSERT INTO rental VALUES {rentals}"]


@pytest.mark.mysql
def test_mariadb_set_bit_blob_point_float_against_itself(mysql_databases, tmp_path):
    """SET values crashed the report ('unhashable type: set'); a SET's text, several members
    joined, was checked against the length of one member; a FLOAT sent back rounded to 6 digits
    failed the range check against itself."""
    url = mysql_databases.new("report_shapes")
    _execute(url, [*_MARIADB, *_mariadb_rows()])
    data = _against_itself(url, tmp_path)
    assert data["rows"]["rental"] == {"real": 40, "synthetic": 40}
    metadata = reflect(url)
    frames = read_tables(url, metadata)
    report = evaluate(frames, read_tables(url, metadata), metadata)
    assert report.validity_passed, [f for f in report.validity if not f["passed"]]


def _postgres_copy_of_mariadb() -> list[str]:
    """The MariaDB tables as a clone into PostgreSQL holds them: SET as text (members in
    another order), BIT as integers, ENUM as a PostgreSQL enum type, POINT as WKT text."""
    features = ["Trailers", "Commentaries", "Deleted Scenes,Trailers", "",
                "Trailers,Deleted Scenes,Commentaries"]
    films = ", ".join(
        f"({i}, '{features[i % 5]}', {i % 8}, '\\x{(i * 37) % 256:02x}ff00'::bytea, "
        f"'POINT({i} {i / 2})', {i * 1.2345678}, '{['G', 'PG', 'R'][i % 3]}', "
        f"'{i % 3:02d}:{i % 60:02d}:00', {1990 + i % 30}, '{{\"k\": [{i % 3}]}}')"
        for i in range(1, 81))
    rentals = ", ".join(f"({i}, NULL, {i * 0.3})" for i in range(1, 41))
    return [
        "CREATE TYPE film_rating AS ENUM ('G', 'PG', 'R')",
        "CREATE TABLE film (id int PRIMARY KEY, features text, flags int, pic bytea, loc text, "
        "price real, rating film_rating, length time, released int, doc jsonb)",
        "CREATE TABLE rental (id int PRIMARY KEY, film_id int REFERENCES film (id), "
        "amount float8)",
        f"INSERT INTO film VALUES {films}".replace("%", "%%"),
        f"INSERT INTO rental VALUES {rentals}"]


@pytest.mark.mysql
@pytest.mark.postgres
def test_mariadb_source_against_a_postgresql_target(mysql_databases, postgres_databases,
                                                    tmp_path):
    """The source's MariaDB types in a PostgreSQL target: a SET type SQLAlchemy cannot adapt
    (TypeError), a BIT asking PostgreSQL for supports_native_bit (AttributeError), ENUM labels
    bound as VARCHAR against a PostgreSQL enum (no operator). Each is read as the target gives
    it, and a SET's members compare in any order."""
    source = mysql_databases.new("report_shapes_source")
    _execute(source, [*_MARIADB, *_mariadb_rows()])
    target = postgres_databases.new("report_shapes_target")
    _execute(target, _postgres_copy_of_mariadb())
    report = evaluate_databases(source, target)
    _runs_to_the_end(report, tmp_path)
    assert report.validity_passed, [f for f in report.validity if not f["passed"]]
    checks = {(f["columns"][0], f["check"]) for f in report.validity}
    assert {("rating", "allowed values"), ("price", "within the real range")} <= checks
    shapes = report.details["Column Shapes"].set_index("Column")["Score"]
    assert shapes.drop("price").tolist() == pytest.approx([1.0] * 5)  # features included
    # MariaDB sends a FLOAT rounded to 6 digits, PostgreSQL a real to 7-9: a few ties differ
    assert shapes["price"] > 0.95


_SQLITE_LOOSE = [
    "CREATE TABLE m (id INTEGER PRIMARY KEY, score REAL, size INTEGER CHECK (size IN (1, 2, 3)), "
    "level REAL)",
    "INSERT INTO m WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 60) "
    "SELECT x, CASE WHEN x % 10 = 0 THEN 'n/a' ELSE x / 4.0 END, x % 3 + 1, x * 1.5 FROM i",
]


@pytest.mark.postgres
def test_a_check_the_target_refuses_is_noted_not_a_crash(postgres_databases, tmp_path):
    """A SQLite column typed REAL holding 'n/a' has MAX 'n/a' (PostgreSQL's driver cannot bind
    it as a float: the report crashed), and a target whose columns are text where the source
    had numbers has no operator for the comparisons (ProgrammingError before). The range comes
    from the numbers read; a refused check is a finding with a note."""
    source = f"sqlite:///{tmp_path / 'loose.sqlite'}"
    _execute(source, _SQLITE_LOOSE)
    target = postgres_databases.new("report_refused")
    _execute(target, [
        "CREATE TABLE m (id int PRIMARY KEY, score float8, size text, level text)",
        "INSERT INTO m SELECT x, x / 4.0, (x %% 3 + 1)::text, (x * 1.5)::text "
        "FROM generate_series(1, 60) x"])
    report = evaluate_databases(source, target)
    _runs_to_the_end(report, tmp_path)
    found = {(f["columns"][0], f["check"]): f for f in report.validity}
    # the real numbers reach 59 / 4 (60 is the text n/a): only 60 / 4 is above them
    assert found[("score", "within the real range")]["violations"] == 1
    assert "note" not in found[("score", "within the real range")]
    for refused in (("size", "allowed values"), ("level", "within the real range")):
        assert found[refused]["violations"] == 0
        assert found[refused]["note"].startswith("not checked: the database refused the query")
    others = [f for key, f in found.items() if key not in {("size", "allowed values"),
                                                           ("level", "within the real range")}]
    assert all("note" not in f for f in others)
    assert "not checked" in (tmp_path / "report.html").read_text()


@pytest.mark.mysql
@pytest.mark.postgres
def test_postgresql_numbers_read_from_a_mariadb_target(postgres_databases, mysql_databases,
                                                       tmp_path):
    """PostgreSQL reflects ``double precision`` with precision 53 and no scale, which MariaDB's
    DOUBLE refuses ('You must specify both precision and scale': the report crashed reading the
    target); ``numeric`` has neither. Such a column is read as MariaDB gives it."""
    source = postgres_databases.new("report_numbers")
    _execute(source, [
        "CREATE TABLE measure (id int PRIMARY KEY, exact numeric NOT NULL, approx real, "
        "wide double precision)",
        "INSERT INTO measure SELECT i, (i * 1.25)::numeric, (i * 0.1 + 3.3)::real, "
        "i * 1e12 / 3 FROM generate_series(1, 40) AS i"])
    target = mysql_databases.new("report_numbers")
    rows = ", ".join(f"({i}, {i * 1.25:.2f}, {i * 0.1 + 3.3}, {i * 1e12 / 3!r})"
                     for i in range(1, 41))
    _execute(target, ["CREATE TABLE measure (id INT PRIMARY KEY, exact DECIMAL(10, 2) NOT NULL, "
                      "approx FLOAT, wide DOUBLE)", f"INSERT INTO measure VALUES {rows}"])
    report = evaluate_databases(source, target)
    _runs_to_the_end(report, tmp_path)
    assert report.validity_passed, [f for f in report.validity if not f["passed"]]
    shapes = report.details["Column Shapes"].set_index("Column")["Score"]
    assert shapes.tolist() == pytest.approx([1.0, 1.0, 1.0])
