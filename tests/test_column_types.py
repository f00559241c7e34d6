"""Every column type: SQLite's declared type names (affinity and a look at the values), and the
generated-by-type values (MAC addresses, ranges, bit strings, SET combinations, points) that the
target must accept. The server-only shapes are in the _postgres and _mysql variants."""

from __future__ import annotations

import datetime as dt
import sqlite3

import numpy as np
import pandas as pd
import sqlalchemy as sa

from hma_db import clone
from hma_db.schema.sqltypes import sqlite_affinity, sqlite_declared_type
from hma_db.source.reflect import reflect

_FOREIGN_NAMES = """CREATE TABLE t (
    id INTEGER PRIMARY KEY, stamp_tz TIMESTAMPTZ, stamp2 DATETIME2, amount NUMBER(10,2),
    label VARCHAR2(30), big UNSIGNED BIG INT, bare, ratio DOUBLE PRECISION, code NVARCHAR2(10),
    born_day DATETIMEOFFSET, numtext TEXT, blobby BLOB, empty_col)"""


def foreign_names_sqlite(path, rows: int = 300) -> str:
    """A SQLite database whose columns carry other databases' type names (or none)."""
    rng = np.random.default_rng(3)
    conn = sqlite3.connect(path)
    conn.execute(_FOREIGN_NAMES)
    start = dt.datetime(2022, 1, 1)
    stamps = [start + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 10**7, rows)]
    conn.executemany("INSERT INTO t VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", [
        (i + 1, s.isoformat(sep=" ") + "+00:00", s.isoformat(sep=" "),
         round(float(rng.random()) * 1000, 2), ["x1", "y22", "z333"][i % 3],
         int(rng.integers(0, 2**40)) if i else 2**62, int(rng.integers(0, 9)),
         float(rng.random()), f"ab{i}", s.date().isoformat(), str(int(rng.integers(0, 10**6))),
         bytes(rng.integers(1, 255, 8, dtype=np.uint8)), None)
        for i, s in enumerate(stamps)])
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def test_sqlite_affinity_rules():
    # The rules in their order: "INT" anywhere wins (FLOATING POINT and POINT are INTEGER).
    names = {"UNSIGNED BIG INT": "INTEGER", "VARCHAR2(30)": "TEXT", "CLOB": "TEXT", "": "BLOB",
             "BLOB": "BLOB", "DOUBLE PRECISION": "REAL", "FLOATING POINT": "INTEGER",
             "POINT": "INTEGER", "NUMBER(10,2)": "NUMERIC", "TIMESTAMPTZ": "NUMERIC"}
    assert {name: sqlite_affinity(name) for name in names} == names


def test_sqlite_declared_type_from_values():
    assert isinstance(sqlite_declared_type("TIMESTAMPTZ", ["2022-02-15 09:34:33+00:00"]),
                      sa.DateTime)
    assert sqlite_declared_type("TIMESTAMPTZ", ["2022-02-15T09:34:33Z"]).timezone
    assert not sqlite_declared_type("DATETIME2", ["2022-02-15 09:34:33"]).timezone
    assert isinstance(sqlite_declared_type("", ["2022-02-15"]), sa.Date)
    assert isinstance(sqlite_declared_type("VARCHAR2(8)", ["2022-02-15"]), sa.String)
    assert isinstance(sqlite_declared_type("VARCHAR2(8)", ["12", "13"]), sa.String)
    assert isinstance(sqlite_declared_type("NUMBER(10,2)", [1.5, 2]), sa.Numeric)
    assert isinstance(sqlite_declared_type("", [1, 2**40]), sa.BigInteger)
    assert isinstance(sqlite_declared_type("MEDIUMINT", [1, 2]), sa.Integer)
    assert isinstance(sqlite_declared_type("", [b"\x01"]), sa.LargeBinary)
    assert isinstance(sqlite_declared_type("", [1, "x"]), sa.Text)


def test_reflect_sqlite_foreign_type_names(tmp_path):
    columns = reflect(foreign_names_sqlite(tmp_path / "src.sqlite")).tables["t"]["columns"]
    assert columns["stamp_tz"]["sdtype"] == "datetime"  # was numerical: fit failed
    assert columns["stamp2"]["sdtype"] == "datetime"
    assert columns["born_day"]["sdtype"] == "datetime"
    assert columns["amount"]["sdtype"] == "numerical"
    assert columns["big"]["computer_representation"] == "Int64"
    assert columns["bare"]["sdtype"] == "numerical"  # no declared type, integers
    assert columns["numtext"].get("generator") == "text"  # numbers in TEXT are text
    assert columns["blobby"]["generator"] == "bytes"


def _rows(url: str, table: str) -> pd.DataFrame:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(f"SELECT * FROM {table}"), conn)
    engine.dispose()
    return frame


def test_clone_sqlite_foreign_type_names(tmp_path):
    source = foreign_names_sqlite(tmp_path / "src.sqlite")
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    clone(source, target, seed=1)
    out = _rows(target, "t")
    assert len(out) == 300
    stamps = pd.to_datetime(out["stamp_tz"], format="ISO8601", utc=True)
    assert stamps.between(pd.Timestamp("2021-12-31", tz="UTC"),
                          pd.Timestamp("2022-05-01", tz="UTC")).all()
    assert out["stamp_tz"].str.endswith("+00:00").all()  # the zone is still said
    assert pd.to_datetime(out["born_day"], format="ISO8601").notna().all()
    assert pd.to_numeric(out["amount"]).between(0, 1000).all()
    assert out["numtext"].map(type).eq(str).all()


def test_sqlite_strict_and_without_rowid_tables(tmp_path):
    path = tmp_path / "strict.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE s (id INTEGER PRIMARY KEY, v ANY, w TEXT) STRICT")
    conn.execute("CREATE TABLE k (code TEXT PRIMARY KEY, at, n INT) WITHOUT ROWID")
    conn.executemany("INSERT INTO s VALUES (?, ?, ?)", [(i, i * 1.5, f"w{i}") for i in range(1, 61)])
    conn.executemany("INSERT INTO k VALUES (?, ?, ?)",
                     [(f"K{i:04d}", f"2023-03-{1 + i % 28:02d}T10:00:00Z", i) for i in range(60)])
    conn.commit()
    conn.close()
    metadata = reflect(f"sqlite:///{path}")
    assert metadata.tables["s"]["columns"]["v"]["sdtype"] == "numerical"
    assert metadata.tables["k"]["columns"]["at"]["sdtype"] == "datetime"  # no type, ISO text
    target = f"sqlite:///{tmp_path / 'strict_out.sqlite'}"
    clone(f"sqlite:///{path}", target, seed=2)
    assert len(_rows(target, "s")) == 60 and len(_rows(target, "k")) == 60


# ------------------------------------------------------------------ generated structured values
def test_ranges_keep_bounds_empty_and_unbounded_shares():
    from hma_db.transform.shaped import learn_range, ranges

    source = pd.Series(["[1,5)", "[3,9)", "empty", "(,4)", "[10,)", "[2,3)"] * 50)
    spec = learn_range(source)
    assert spec["element"] == "int" and spec["bounds"] == "[)"
    out = pd.Series(ranges(spec, 4000, np.random.default_rng(0)))
    assert 0.10 < (out == "empty").mean() < 0.24
    parts = out[out != "empty"].str.extract(r"^([\[(])(-?\d*),(-?\d*)([\])])$")
    assert parts[[0, 3]].notna().all().all()  # every value is a range literal
    lower = pd.to_numeric(parts[1].replace("", np.nan))
    upper = pd.to_numeric(parts[2].replace("", np.nan))
    assert lower.min() >= 1 and upper.max() <= 10
    assert ((upper >= lower) | upper.isna() | lower.isna()).all()
    assert parts[1].eq("").any() and parts[2].eq("").any()  # unbounded ends, as in the source


def test_mac_addresses_and_bit_strings():
    from hma_db.transform.shaped import bit_strings, learn_bits, learn_mac, mac_addresses

    rng = np.random.default_rng(1)
    macs = pd.Series(mac_addresses(learn_mac(pd.Series(["08:00:2b:01:02:03"])), 500, rng))
    assert macs.str.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}").all()
    assert (macs.str[:2].map(lambda h: int(h, 16)) & 0b11 == 0b10).all()  # local, unicast
    fixed = pd.Series(bit_strings(learn_bits(pd.Series(["0101"] * 5)), 200, rng, 4))
    assert fixed.str.fullmatch(r"[01]{4}").all()
    varying = pd.Series(bit_strings(learn_bits(pd.Series(["1", "0110101"])), 200, rng, 5))
    assert varying.str.fullmatch(r"[01]{1,5}").all()
    numbers = bit_strings(learn_bits(pd.Series([3, 200])), 200, rng, 8)
    assert all(0 <= v < 256 for v in numbers)


def test_sqlite_known_type_names_holding_other_values(tmp_path):
    path = tmp_path / "known.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, a DATE, b DATETIME, c TIMESTAMP, "
                 "e BOOLEAN, f DECIMAL(5,2), g BOOLEAN)")
    conn.executemany("INSERT INTO d VALUES (?, ?, ?, ?, ?, ?, ?)", [
        (i, f"2022-02-{1 + i % 28:02d} 10:00:00", f"2022-03-{1 + i % 28:02d}",
         1_600_000_000 + i * 1000, ["yes", "no"][i % 2], "n/a" if i % 50 == 0 else i / 3, i % 2)
        for i in range(1, 201)])
    conn.commit()
    conn.close()
    columns = reflect(f"sqlite:///{path}").tables["d"]["columns"]
    assert columns["a"]["sdtype"] == "datetime"  # read failed: Invalid isoformat string
    assert columns["c"]["sdtype"] == "numerical"  # epoch seconds
    assert columns["e"]["sdtype"] == "categorical" and columns["g"]["sdtype"] == "boolean"
    target = f"sqlite:///{tmp_path / 'known_out.sqlite'}"
    clone(f"sqlite:///{path}", target, seed=2)
    out = _rows(target, "d")
    assert len(out) == 200 and set(out["e"]) == {"yes", "no"}  # were all read as true
    assert pd.to_datetime(out["a"], format="ISO8601").dt.hour.nunique() > 1
