"""write(): schema creation, order, cycles, if_exists modes, drift and failures, on SQLite.

The helpers at the top are shared with test_write_postgres.py and test_write_mysql.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE

from hma_db import Metadata, SchemaDriftError, WriteError
from hma_db.schema.graph import relationship_name
from hma_db.source.reflect import reflect
from hma_db.target.check_sql import translate_check
from hma_db.target.ddl import drift, target_metadata
from hma_db.target.prepare import parents_first
from hma_db.target.write import write, write_chunks

CHINOOK_URL = f"sqlite:///{CHINOOK_SQLITE}"


def chinook() -> tuple[Metadata, dict[str, pd.DataFrame]]:
    """Chinook's metadata and its real rows (the writer does not care where rows come from)."""
    metadata = reflect(CHINOOK_URL)
    engine = sa.create_engine(CHINOOK_URL)
    with engine.connect() as conn:
        data = {t: pd.read_sql_table(t, conn) for t in metadata.tables}
    engine.dispose()
    return metadata, data


def structure(url: str, schema: str | None = None) -> dict:
    """What must survive a round trip: tables, columns, primary keys, relationships."""
    metadata = reflect(url, schema=schema)
    return {
        "columns": {t: list(spec["columns"]) for t, spec in metadata.tables.items()},
        "primary_keys": {t: metadata.primary_key(t) for t in metadata.tables},
        "relationships": sorted(relationship_name(r) for r in metadata.relationships),
    }


def row_counts(url: str, schema: str | None = None) -> dict[str, int]:
    """Every table in the target with its row count (the 'state' a failed write must keep)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names(schema=schema)
        prep = conn.dialect.identifier_preparer
        prefix = f"{prep.quote(schema)}." if schema else ""
        counts = {n: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {prefix}{prep.quote(n)}").scalar()
                  for n in names}
    engine.dispose()
    return counts


def insert_without_id(url: str, metadata: Metadata, schema: str | None = None) -> dict[str, int]:
    """In every table with a generated key, INSERT a copy of one row without its key; return the
    new key per table (it must be past the loaded maximum)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    new_keys = {}
    with engine.begin() as conn:
        prep = conn.dialect.identifier_preparer
        prefix = f"{prep.quote(schema)}." if schema else ""
        for name in metadata.tables:
            pk = metadata.primary_key(name)
            options = metadata.tables[name]["columns"][pk[0]] if len(pk) == 1 else {}
            if len(pk) != 1 or not options.get("autoincrement"):
                continue
            table, key = f"{prefix}{prep.quote(name)}", prep.quote(pk[0])
            others = ", ".join(prep.quote(c) for c in metadata.tables[name]["columns"] if c != pk[0])
            before = conn.exec_driver_sql(f"SELECT MAX({key}) FROM {table}").scalar()
            conn.exec_driver_sql(f"INSERT INTO {table} ({others}) SELECT {others} FROM {table} "
                                 f"WHERE {key} = {before}")
            new_keys[name] = conn.exec_driver_sql(f"SELECT MAX({key}) FROM {table}").scalar()
            assert new_keys[name] == before + 1, name
    engine.dispose()
    return new_keys


def check_foreign_keys_proven_at_commit(url: str, metadata: Metadata,
                                       data: dict[str, pd.DataFrame]) -> str:
    """A planted orphan (an Album row whose artist does not exist) fails the write once every
    row is in, when the foreign keys are proven in one pass before the commit: every table was
    loaded, both chunks of write_chunks were asked for, and the target is left empty. Returns
    write()'s error message."""
    bad = {**data, "Album": data["Album"].assign(ArtistId=999_999)}
    started: list[str] = []
    with pytest.raises(WriteError, match="table 'Album' failed") as info:
        write(bad, metadata, url, progress=lambda table, done, total: started.append(table))
    assert set(started) == set(metadata.tables), started
    assert "the target was left as it was" in str(info.value)
    asked: list[int] = []

    def chunks():
        asked.append(1)
        yield bad
        asked.append(2)
        yield {t: f.iloc[:0] for t, f in data.items()}

    with pytest.raises(WriteError, match="table 'Album' failed"):
        write_chunks(chunks(), metadata, url)
    assert asked == [1, 2]
    assert row_counts(url) == {}
    return str(info.value)


@pytest.fixture(scope="module")
def chinook_data():
    return chinook()


@pytest.fixture
def target(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'target.sqlite'}"


def _fk_violations(url: str) -> list:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    engine.dispose()
    return rows


# ------------------------------------------------------------------------------ round trips
def test_chinook_into_sqlite_keeps_structure_rows_and_keys(chinook_data, target):
    metadata, data = chinook_data
    counts = write(data, metadata, target)
    assert counts == {t: len(data[t]) for t in metadata.topological_order()}
    assert row_counts(target) == {t: len(f) for t, f in data.items()}
    assert structure(target) == structure(CHINOOK_URL)
    assert _fk_violations(target) == []
    engine = sa.create_engine(target)
    back = pd.read_sql_table("Invoice", engine).sort_values("InvoiceId").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, data["Invoice"].sort_values("InvoiceId")
                                  .reset_index(drop=True), check_dtype=False)
    with engine.connect() as conn:
        tables = metadata.topological_order()
        assert drift(conn, target_metadata(metadata, tables, "sqlite", None), tables, None) == []
    engine.dispose()
    assert set(insert_without_id(target, metadata)) == {
        t for t in metadata.tables if t != "PlaylistTrack"}


def test_sdtype_only_metadata_creates_tables(target):
    metadata = Metadata.from_dict({"tables": {
        "shop": {"primary_key": "id", "columns": {"id": {"sdtype": "id"},
                                                  "name": {"sdtype": "company", "pii": True},
                                                  "opened": {"sdtype": "datetime"},
                                                  "rating": {"sdtype": "numerical"},
                                                  "open": {"sdtype": "boolean"}}}}})
    frame = pd.DataFrame({"id": [1, 2], "name": ["a", None],
                          "opened": pd.to_datetime(["2020-01-01", None]),
                          "rating": [1.5, np.nan], "open": [True, False]})
    assert write({"shop": frame}, metadata, target) == {"shop": 2}
    back = pd.read_sql_table("shop", sa.create_engine(target))
    assert back["name"].tolist() == ["a", None] and back["rating"].isna().tolist() == [False, True]


# ----------------------------------------------------------------------------- if_exists
def test_fail_lists_existing_tables_and_changes_nothing(chinook_data, target):
    metadata, data = chinook_data
    write({"Artist": data["Artist"]}, metadata, target)
    with pytest.raises(WriteError, match="already exist in the target: Artist"):
        write(data, metadata, target)
    assert row_counts(target) == {"Artist": len(data["Artist"])}


def test_replace_truncate_append(chinook_data, target):
    metadata, data = chinook_data
    write(data, metadata, target)
    write(data, metadata, target, if_exists="replace")
    assert row_counts(target) == {t: len(f) for t, f in data.items()}
    write(data, metadata, target, if_exists="truncate")
    assert row_counts(target) == {t: len(f) for t, f in data.items()}
    write(data, metadata, target, if_exists="append")
    assert row_counts(target) == {t: 2 * len(f) for t, f in data.items()}
    assert _fk_violations(target) == []
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        # The appended invoice lines point at the appended invoices, not the old ones.
        max_invoice = int(data["Invoice"]["InvoiceId"].max())
        shifted = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM InvoiceLine WHERE InvoiceLineId > ? AND InvoiceId > ?",
            (int(data["InvoiceLine"]["InvoiceLineId"].max()), max_invoice)).scalar()
    assert shifted == len(data["InvoiceLine"])


def test_append_reference_existing(chinook_data, target):
    metadata, data = chinook_data
    write(data, metadata, target)
    albums = pd.DataFrame({"AlbumId": [1, 2], "Title": ["new a", "new b"], "ArtistId": [1, 2]})
    # Artist 1 and 2 are not in the data: they must be rows already in the target.
    with pytest.raises(WriteError, match="reference_existing=True"):
        write({"Album": albums, "Artist": data["Artist"].iloc[:0]}, metadata, target,
              if_exists="append")
    write({"Album": albums, "Artist": data["Artist"].iloc[:0]}, metadata, target,
          if_exists="append", reference_existing=True)
    back = pd.read_sql_query("SELECT * FROM Album WHERE Title IN ('new a', 'new b') ORDER BY AlbumId",
                             sa.create_engine(target))
    assert back["AlbumId"].tolist() == [348, 349] and back["ArtistId"].tolist() == [1, 2]


def test_drift_is_refused_with_the_differences(chinook_data, target):
    metadata, data = chinook_data
    write(data, metadata, target)
    engine = sa.create_engine(target)
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE Genre ADD COLUMN extra INTEGER")
        conn.exec_driver_sql("ALTER TABLE Artist DROP COLUMN Name")
    with pytest.raises(SchemaDriftError) as info:
        write(data, metadata, target, if_exists="append")
    assert "table Genre: the target has a column extra" in str(info.value)
    assert "table Artist: column Name is missing in the target" in str(info.value)
    assert row_counts(target) == {t: len(f) for t, f in data.items()}


# -------------------------------------------------------------------- cycles and order
def _cycle_metadata() -> Metadata:
    return Metadata.from_dict({
        "tables": {
            "dept": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, "manager_id": {"sdtype": "id", "nullable": True}}},
            "emp": {"primary_key": "id", "columns": {
                "id": {"sdtype": "id"}, "dept_id": {"sdtype": "id"},
                "boss_id": {"sdtype": "id", "nullable": True}}}},
        "relationships": [
            {"parent_table_name": "dept", "parent_primary_key": "id",
             "child_table_name": "emp", "child_foreign_key": "dept_id"},
            {"parent_table_name": "emp", "parent_primary_key": "id",
             "child_table_name": "dept", "child_foreign_key": "manager_id"},
            {"parent_table_name": "emp", "parent_primary_key": "id",
             "child_table_name": "emp", "child_foreign_key": "boss_id"}]})


def cycle_data(n: int = 2000) -> dict[str, pd.DataFrame]:
    """Employees listed children-first (a chain: row i reports to row i+1), departments managed
    by employees, employees in departments: a cycle plus a deep self-reference."""
    ids = np.arange(1, n + 1)
    emp = pd.DataFrame({"id": ids, "dept_id": (ids % 10) + 1,
                        "boss_id": pd.array(np.append(ids[1:], [0]), dtype="Int64")})
    emp.loc[n - 1, "boss_id"] = pd.NA
    dept = pd.DataFrame({"id": np.arange(1, 11), "manager_id": pd.array(np.arange(1, 11) * 7,
                                                                        dtype="Int64")})
    dept.loc[9, "manager_id"] = pd.NA
    return {"dept": dept, "emp": emp}


def check_cycle_load(url: str, data: dict[str, pd.DataFrame], schema: str | None = None):
    engine = sa.create_engine(url)
    for name, frame in data.items():
        table = f"{schema}.{name}" if schema else name
        back = pd.read_sql_query(f"SELECT * FROM {table} ORDER BY id", engine)
        expected = frame.sort_values("id").reset_index(drop=True)
        pd.testing.assert_frame_equal(back.astype("float"), expected.astype("float"))
    engine.dispose()


def test_cycle_and_self_reference_on_sqlite(target):
    data = cycle_data()
    assert write(data, _cycle_metadata(), target) == {"dept": 10, "emp": 2000}
    check_cycle_load(target, data)
    assert _fk_violations(target) == []


def test_rows_referencing_each_other_load_through_update(target):
    emp = pd.DataFrame({"id": [1, 2, 3], "dept_id": [1, 1, 1], "boss_id": [2, 1, None]})
    data = {"dept": pd.DataFrame({"id": [1], "manager_id": [None]}), "emp": emp}
    write(data, _cycle_metadata(), target)
    back = pd.read_sql_query("SELECT * FROM emp ORDER BY id", sa.create_engine(target))
    assert back["boss_id"].tolist()[:2] == [2, 1]


def test_parents_first_orders_a_long_chain_and_detects_cycles():
    n = 50_000
    frame = pd.DataFrame({"id": np.arange(n), "up": np.append(np.arange(1, n), -5)})
    order = parents_first(frame, ["id"], ["up"])
    assert order[0] == n - 1 and order[-1] == 0
    looped = pd.DataFrame({"id": [1, 2, 3], "up": [2, 3, 1]})
    assert parents_first(looped, ["id"], ["up"]) is None


# ---------------------------------------------------------------------- failures
def test_constraint_violation_leaves_no_tables(chinook_data, target):
    metadata, data = chinook_data
    broken = dict(data)
    broken["InvoiceLine"] = data["InvoiceLine"].assign(TrackId=999_999)
    with pytest.raises(WriteError, match="table 'InvoiceLine' failed at commit: 2240 row.s. "
                                         "reference rows missing from Track .FOREIGN KEY.; the "
                                         "target was left"):
        write(broken, metadata, target)
    assert row_counts(target) == {}


def test_a_planted_orphan_fails_at_commit(chinook_data, target):
    message = check_foreign_keys_proven_at_commit(target, *chinook_data)
    assert "failed at commit: 347 row(s) reference rows missing from Artist (FOREIGN KEY)" \
        in message


def test_emptying_a_parent_of_a_table_not_written_is_refused(chinook_data, target):
    """Album refers to Artist: emptying Artist alone would leave Album's rows without their
    parent, even for a moment (PostgreSQL refuses such a TRUNCATE or DROP as well)."""
    metadata, data = chinook_data
    write(data, metadata, target)
    before = row_counts(target)
    for mode in ("truncate", "replace"):
        with pytest.raises(WriteError, match=r"Emptying Artist would leave 347 row\(s\) of tables "
                                             r"this write does not load without their parent "
                                             r"\(Album -> Artist; FOREIGN KEY\)"):
            write({"Artist": data["Artist"]}, metadata, target, if_exists=mode)
        assert row_counts(target) == before
    # Written together, the tables in a cycle are emptied and loaded again.
    write(cycle_data(), _cycle_metadata(), target)
    write(cycle_data(), _cycle_metadata(), target, if_exists="truncate")
    write(cycle_data(), _cycle_metadata(), target, if_exists="replace")
    assert row_counts(target)["emp"] == 2000 and _fk_violations(target) == []


def test_interrupt_leaves_target_as_it_was(chinook_data, target):
    metadata, data = chinook_data
    write({"Artist": data["Artist"]}, metadata, target)

    def interrupt(table, done, total):
        if table == "Track":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write(data, metadata, target, if_exists="append", progress=interrupt, batch_size=100)
    assert row_counts(target) == {"Artist": len(data["Artist"])}


def test_unreachable_target_is_one_line_without_password(chinook_data):
    metadata, data = chinook_data
    with pytest.raises(WriteError) as info:
        write(data, metadata, "postgresql+psycopg://app:s3cret@127.0.0.1:1/nowhere")
    message = str(info.value)
    assert "s3cret" not in message and "\n" not in message and "Cannot connect" in message


def test_bad_arguments_are_refused(chinook_data, target):
    metadata, data = chinook_data
    with pytest.raises(WriteError, match="if_exists"):
        write(data, metadata, target, if_exists="merge")
    with pytest.raises(WriteError, match="unknown_table"):
        write({"unknown_table": data["Artist"]}, metadata, target)
    with pytest.raises(WriteError, match="PostgreSQL only"):
        write(data, metadata, target, disable_triggers=True)
    with pytest.raises(WriteError, match="NOT NULL column 'Album.Title'"):
        write({"Album": data["Album"].drop(columns="Title"), "Artist": data["Artist"]},
              metadata, target)


# ------------------------------------------------------------------------ CHECK translation
@pytest.mark.parametrize(("text", "dialect", "expected"), [
    ("((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))",
     "mysql", "((`status`) IN ('a', 'b'))"),
    ("price >= (0)::numeric", "sqlite", '"price" >= (0)'),
    ("\"Qty\" > 0 AND price BETWEEN 0 AND 10", "mysql", "`Qty` > 0 AND `price` BETWEEN 0 AND 10"),
    ("length(status) > 2", "sqlite", None),
    ("status <> ALL (ARRAY['x'::text])", "sqlite", "\"status\" NOT IN ('x')"),
])
def test_check_constraints_translate_or_are_dropped(text, dialect, expected):
    assert translate_check(text, dialect, ["status", "price", "Qty"]) == expected


# ------------------------------------------------------------------------ type translation
def _ddl(column_type, dialect_name: str, *, keyed: bool = False) -> str:
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    from hma_db.target.types import translate_type

    dialects = {"postgresql": postgresql.dialect(), "mysql": mysql.dialect(),
                "sqlite": sqlite.dialect()}
    translated = translate_type(column_type, dialect_name, keyed=keyed, name="t_c")
    table = sa.Table("t", sa.MetaData(), sa.Column("c", translated))
    ddl = str(sa.schema.CreateTable(table).compile(dialect=dialects[dialect_name]))
    return " ".join(ddl.split())


@pytest.mark.parametrize(("source", "dialect", "expected"), [
    ("enum", "sqlite", "c VARCHAR(5), CONSTRAINT t_c_enum CHECK (c IN ('sad', 'happy')) )"),
    ("enum", "mysql", "c ENUM('sad','happy')"),
    ("enum", "postgresql", "c t_c_enum"),
    ("uuid", "mysql", "c CHAR(36)"),
    ("uuid", "sqlite", "c CHAR(36)"),
    ("uuid", "postgresql", "c UUID"),
    ("tstz", "mysql", "c DATETIME(6)"),
    ("tstz", "postgresql", "c TIMESTAMP WITH TIME ZONE"),
    ("numeric", "mysql", "c NUMERIC(65, 30)"),
    ("numeric_ps", "sqlite", "c NUMERIC(10, 2)"),
    ("array", "mysql", "c JSON"),
    ("array", "postgresql", "c TEXT[]"),
    ("jsonb", "sqlite", "c JSON"),
    ("domain", "mysql", "c INTEGER"),
    ("interval", "sqlite", "c DOUBLE"),
    ("nvarchar", "postgresql", "c VARCHAR(20)"),
    ("text", "mysql", "c LONGTEXT"),
    ("tsvector", "postgresql", "c TSVECTOR"),
    ("tsvector", "sqlite", "c TEXT"),
])
def test_types_translate_to_the_closest_target_type(source, dialect, expected):
    from sqlalchemy.dialects import postgresql

    types = {
        "enum": postgresql.ENUM("sad", "happy", name="t_c_enum"), "uuid": postgresql.UUID(),
        "tstz": postgresql.TIMESTAMP(timezone=True), "numeric": postgresql.NUMERIC(),
        "numeric_ps": postgresql.NUMERIC(10, 2), "array": postgresql.ARRAY(sa.Text()),
        "jsonb": postgresql.JSONB(), "domain": postgresql.DOMAIN("pos", sa.Integer()),
        "interval": postgresql.INTERVAL(), "nvarchar": sa.NVARCHAR(20), "text": sa.Text(),
        "tsvector": postgresql.TSVECTOR(),
    }
    assert expected in _ddl(types[source], dialect)


def test_mariadb_key_text_columns_get_a_length():
    assert "c VARCHAR(255)" in _ddl(sa.Text(), "mysql", keyed=True)
