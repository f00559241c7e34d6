"""PostgreSQL reads through COPY give the values and dtypes of the SQLAlchemy path, type by type."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import ReflectionError, reflect
from hma_db.source.read import begin_read_only, concat_chunks, read_table_chunks, read_tables
from hma_db.source.subset import read_subset

pytestmark = pytest.mark.postgres

DDL = r"""
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'we,ird "one"');
CREATE DOMAIN colour AS varchar(10) CHECK (VALUE IN ('red', 'green'));
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE awkward (
  id integer PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, big bigint NOT NULL, ser serial,
  n numeric, n152 numeric(15,2), n0 numeric(10,0), r real, d double precision, m money,
  b boolean, bnn boolean NOT NULL, t text, vc varchar(20), ch char(5), ci citext,
  dt date, ts timestamp, tstz timestamptz, tm time, tmtz timetz, iv interval, u uuid,
  j json, jb jsonb, jn json, arr_i integer[], arr_t text[], arr_2d integer[][],
  arr_n numeric[], arr_d date[], arr_e mood[], ba bytea, e mood, col colour, pos positive,
  ip inet, net cidr, mac macaddr, tsv tsvector, x xml, pt point, bits bit(4), vb varbit, oi oid,
  "Odd ""name"", 50%" text, huge bigint
);
INSERT INTO awkward VALUES
 (1, 1, 2, 3, 9223372036854775807, DEFAULT, 1.5, 12.34, 7, 1.25, 2.5, 3.5, true, false,
  'hello', 'vc', 'ab', 'CiT', '2024-01-02', '2024-01-02 03:04:05.123456',
  '2024-01-02 03:04:05+02', '03:04:05', '03:04:05+02', '1 day 02:03:04',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', '1', '{1,2,3}',
  '{"a","b c",NULL}', '{{1,2},{3,4}}', '{1.50,NULL,2}', '{2024-01-02,NULL}', '{sad,happy}',
  '\x0001ff', 'happy', 'red', 5, '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',
  'a fat cat', '<a>1</a>', '(1,2)', B'1010', B'11', 42, '50% "off"', NULL),
 (2, NULL, NULL, NULL, -9223372036854775808, DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL),
 (3, -32768, 2147483647, 1234567890123, 0, DEFAULT, 'NaN', -0.01, -12345678, 'NaN',
  'Infinity', -1.5, false, false, '', '', '', '', '0001-01-01', '1500-03-01 12:00:00',
  '1890-01-01 00:00:00+00', '00:00:00', '23:59:59.999999-05:30', '-3 days -00:00:01',
  '00000000-0000-0000-0000-000000000000', '[]', '"str"', '2.5', '{}', '{}', '{}', '{}', '{}',
  '{}', '', 'we,ird "one"', 'green', 1, '::1', '::/0', '00:00:00:00:00:00', '', '<b/>', '(0,0)',
  B'0000', B'', 0, '', 9007199254740993),
 (4, 0, 0, 0, 1, DEFAULT, '123456789012345678901234567890.123456789', 0, 0, '-Infinity', '-0',
  0, true, true, E'a "quoted",\nline\\back\ttab\r\u00e9 \u6f22\u5b57 \U0001F600', 'NULL', '\N',
  'x,y', '2024-02-29', '2024-02-29 12:00:00', '2024-06-01 12:00:00.5-07', '12:30:00.5',
  '12:00:00+00', '1 year 2 mons', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '{"k": "v\"q", "n": 1.5e300}', '{"k": [true, false]}', NULL, '{NULL}', '{"","\"","NULL"}',
  '{}', '{NaN}', '{9999-12-31}', '{"we,ird \"one\""}', '\x', 'sad', NULL, 2, '10.1.2.3/24',
  '192.168.0.0/16', 'ff:ff:ff:ff:ff:ff', 'b:1A c:2', '<c>é</c>', '(-1.5,2.25)', B'1111',
  B'1010101', 4294967295, E'\\N', NULL),
 (5, NULL, NULL, NULL, 5, DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, true, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (6, NULL, NULL, NULL, 6, DEFAULT, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL),
 (7, 5, 5, 5, 7, DEFAULT, 1e-20, 0.5, 5, 3.4e38, 1.7976931348623157e308, 1000000.01, false,
  true, ' ', ' lead', 'a', 'é', '9999-12-31', '2262-04-11 23:47:16', '3000-01-01 00:00:00+00',
  '23:59:59.999999', '00:00:00+14', '200000 days', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  'null', 'null', NULL, '{-1}', '{"with,comma"}', '{{1},{2}}', '{0}', '{}', '{ok}', '\x5c0a0d',
  'ok', 'green', 3, '::ffff:1.2.3.4', '2001:db8::/32', '01:02:03:04:05:06', 'x', '<d/>',
  '(1e10,1e-10)', B'0001', B'0', 1, '"', NULL),
 (8, 7, 8, 9, 8, DEFAULT, 2, 3, 4, 5, 6, 7, true, false, 'last', 'v', 'c', 'C', '2020-03-29',
  '2020-03-29 02:30:00', '2020-03-29 01:30:00+00', '01:02:03', '01:02:03-08', '-1 years +2 days',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '{}', '{}', '3', '{1}', '{a}', '{{5}}', '{1e3}',
  '{2020-01-01}', '{sad}', '\xff', 'sad', 'red', 4, '1.2.3.4/32', '1.2.3.0/24',
  'aa:bb:cc:dd:ee:ff', 'z', '<e/>', '(3,4)', B'0110', B'1', 7, 'end', 1);
CREATE TABLE empty_one (id integer PRIMARY KEY, t text, ts timestamptz);
CREATE SCHEMA shop;
CREATE TABLE shop.item (id integer PRIMARY KEY, price numeric(8, 2), label text);
INSERT INTO shop.item VALUES (1, 9.99, 'x'), (2, NULL, NULL);
"""


@pytest.fixture(scope="module")
def awkward_url(postgres_databases) -> str:
    url = postgres_databases.new("read_copy")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(DDL)
    engine.dispose()
    return url


def _read(url: str, metadata, table: str, *, use_copy: bool, chunk_size: int,
          timezone: str | None = None) -> list[pd.DataFrame]:
    options = {"options": f"-c TimeZone={timezone}"} if timezone else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=options)
    with engine.connect() as conn:
        begin_read_only(conn)
        chunks = list(read_table_chunks(conn, metadata, table, chunk_size=chunk_size,
                                        use_copy=use_copy))
        conn.rollback()
    engine.dispose()
    return chunks


def assert_same(expected: pd.DataFrame, found: pd.DataFrame) -> None:
    """Same columns, index and dtypes; typed columns equal; every object value of the same type
    and repr (``==`` would pass 1 == 1.0 == True, and fail NaN inside a list)."""
    assert list(found.columns) == list(expected.columns)
    assert found.dtypes.astype(str).to_dict() == expected.dtypes.astype(str).to_dict()
    objects = [name for name in expected.columns if expected[name].dtype == object]
    pd.testing.assert_frame_equal(found.drop(columns=objects), expected.drop(columns=objects),
                                  check_exact=True)
    for name in objects:
        pairs = [(type(v), repr(v)) for v in expected[name]]
        assert [(type(v), repr(v)) for v in found[name]] == pairs, name


@pytest.mark.parametrize("chunk_size", [2, 3, 1000])
@pytest.mark.parametrize("timezone", [None, "Europe/Amsterdam"])
def test_copy_and_sqlalchemy_readers_agree_on_every_type(awkward_url, chunk_size, timezone,
                                                         caplog):
    metadata = reflect(awkward_url, include=["awkward"])
    slow = _read(awkward_url, metadata, "awkward", use_copy=False, chunk_size=chunk_size,
                 timezone=timezone)
    with caplog.at_level(logging.DEBUG, logger="hma_db.source.read_copy"):
        fast = _read(awkward_url, metadata, "awkward", use_copy=True, chunk_size=chunk_size,
                     timezone=timezone)
    assert "read awkward through COPY" in caplog.text
    assert [len(c) for c in fast] == [len(c) for c in slow]
    # 'huge' holds 2**53 + 1 beside NULLs, which the SQLAlchemy path rounds (see the next test).
    slow, fast = ([c.drop(columns="huge") for c in chunks] for chunks in (slow, fast))
    for expected, found in zip(slow, fast, strict=True):
        assert_same(expected, found)
    if chunk_size == 1000:  # a whole chunk: some columns are datetime64, some objects
        frame = fast[0]
        assert str(frame["ts"].dtype) == "object"  # 1500 is beyond pandas' nanoseconds
        assert str(frame["dt"].dtype) == "object" and str(frame["n"].dtype) == "object"
        assert str(frame["pos"].dtype) == "Int64" and str(frame["b"].dtype) == "boolean"
        assert frame.loc[3, "t"] == 'a "quoted",\nline\\back\ttab\ré 漢字 😀'
        assert frame.loc[1, "vc"] is None and frame.loc[2, "vc"] == ""
        assert frame.loc[6, 'Odd "name", 50%'] == '"'
    # concat_chunks settles the dtypes of a single chunk in place: compared last.
    assert_same(concat_chunks(slow), concat_chunks(fast))


def test_nullable_bigint_beyond_float_precision_stays_exact(awkward_url):
    metadata = reflect(awkward_url, include=["awkward"])
    fast = _read(awkward_url, metadata, "awkward", use_copy=True, chunk_size=1000)[0]
    assert str(fast["huge"].dtype) == "Int64" and fast.loc[2, "huge"] == 2**53 + 1
    slow = _read(awkward_url, metadata, "awkward", use_copy=False, chunk_size=1000)[0]
    assert slow.loc[2, "huge"] == 2**53  # through float64: the one known difference


def test_empty_table_schema_and_column_subset(awkward_url):
    for table, schema in (("empty_one", None), ("item", "shop")):
        metadata = reflect(awkward_url, include=[table], schema=schema)
        for chunk_size in (1, 1000):
            slow = _read(awkward_url, metadata, table, use_copy=False, chunk_size=chunk_size)
            fast = _read(awkward_url, metadata, table, use_copy=True, chunk_size=chunk_size)
            assert len(fast) == len(slow)
            for expected, found in zip(slow, fast, strict=True):
                assert_same(expected, found)
    metadata = reflect(awkward_url, include=["awkward"])
    engine = sa.create_engine(awkward_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        begin_read_only(conn)
        chunks = {use: list(read_table_chunks(conn, metadata, "awkward", columns=["id", "e"],
                                              where=lambda t: t.c.id.in_([1, 3, 4, 99]),
                                              use_copy=use)) for use in (False, True)}
        conn.rollback()
    engine.dispose()
    assert_same(chunks[False][0], chunks[True][0])
    assert chunks[True][0]["id"].tolist() == [1, 3, 4]


def test_a_reader_closed_early_leaves_the_transaction_usable(awkward_url):
    metadata = reflect(awkward_url, include=["awkward"])
    engine = sa.create_engine(awkward_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        begin_read_only(conn)
        chunks = read_table_chunks(conn, metadata, "awkward", chunk_size=2)
        assert len(next(chunks)) == 2
        chunks.close()
        assert len(pd.concat(read_table_chunks(conn, metadata, "awkward"))) == 8
        conn.rollback()
    engine.dispose()


def test_a_value_psycopg_cannot_load_fails_as_on_the_sqlalchemy_path(postgres_databases):
    url = postgres_databases.new("read_copy_inf")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY, at timestamp)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1, '2024-01-01'), (2, 'infinity')")
    engine.dispose()
    metadata = reflect(url)
    with pytest.raises(ReflectionError, match="Reading table 't' failed: .*infinity"):
        read_tables(url, metadata)


def test_chinook_tables_agree(chinook_postgres):
    metadata = reflect(chinook_postgres)
    for table in metadata.tables:
        slow = _read(chinook_postgres, metadata, table, use_copy=False, chunk_size=500)
        fast = _read(chinook_postgres, metadata, table, use_copy=True, chunk_size=500)
        assert_same(concat_chunks(slow), concat_chunks(fast))


def test_subset_through_copy_is_the_subset_through_sqlalchemy(chinook_postgres, monkeypatch):
    fast = read_subset(chinook_postgres, reflect(chinook_postgres), 1500, seed=3)
    monkeypatch.setattr("hma_db.source.read.is_psycopg", lambda conn: False)
    slow = read_subset(chinook_postgres, reflect(chinook_postgres), 1500, seed=3)
    assert sorted(fast) == sorted(slow) and 1000 < sum(len(f) for f in fast.values()) < 2500
    for table in slow:
        assert_same(slow[table], fast[table])
