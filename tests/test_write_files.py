"""write_files and HMASynthesizer.sample_to_directory: one CSV or Parquet file per table."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE

from hma_db import ConfigError, HMASynthesizer, Metadata, WriteError, reflect, write_files


@pytest.fixture(scope="module")
def chinook_model():
    synthesizer = HMASynthesizer(reflect(f"sqlite:///{CHINOOK_SQLITE}"), verbose=False, seed=6)
    synthesizer.fit_database(f"sqlite:///{CHINOOK_SQLITE}")
    return synthesizer


def _chunks(synthesizer, scale, chunk_rows, seed=1) -> dict[str, pd.DataFrame]:
    """What sample_to_directory writes: the chunks of the seed's stream, concatenated."""
    synthesizer.reset_sampling(seed)
    parts: dict[str, list] = {}
    for chunk in synthesizer.sample_chunks(scale=scale, chunk_rows=chunk_rows):
        for table, frame in chunk.items():
            parts.setdefault(table, []).append(frame)
    return {t: pd.concat(f, ignore_index=True) for t, f in parts.items()}


def test_parquet_round_trips_values_and_dtypes_across_chunks(chinook_model, tmp_path):
    chinook_model.reset_sampling(1)
    rows = chinook_model.sample_to_directory(tmp_path / "a" / "b", scale=0.5, format="parquet",
                                             chunk_rows=500)
    expected = _chunks(chinook_model, 0.5, 500)
    assert rows == {t: len(expected[t]) for t in chinook_model.metadata.topological_order()}
    assert sorted(p.name for p in (tmp_path / "a" / "b").iterdir()) == sorted(
        f"{t}.parquet" for t in expected)
    for table, frame in expected.items():
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "b" / f"{table}.parquet"),
                                      frame)
    assert rows["Track"] == round(3503 / 2) and rows["InvoiceLine"] == 2240 // 2


def test_csv_round_trips_columns_rows_and_integer_keys(chinook_model, tmp_path):
    chinook_model.reset_sampling(1)
    rows = chinook_model.sample_to_directory(tmp_path, scale=0.2, chunk_rows=300)
    expected = _chunks(chinook_model, 0.2, 300)
    for table, frame in expected.items():
        back = pd.read_csv(tmp_path / f"{table}.csv")
        assert list(back.columns) == list(frame.columns) and len(back) == rows[table], table
    employee = (tmp_path / "Employee.csv").read_text().splitlines()
    # A nullable integer key (float64 in pandas) is written as an integer, not as "1.0".
    reports_to = pd.read_csv(tmp_path / "Employee.csv", dtype=str)["ReportsTo"].dropna()
    assert len(reports_to) and reports_to.str.fullmatch(r"\d+").all(), employee
    track = pd.read_csv(tmp_path / "Track.csv")
    pd.testing.assert_series_equal(track["TrackId"], expected["Track"]["TrackId"])
    pd.testing.assert_series_equal(track["UnitPrice"], expected["Track"]["UnitPrice"].astype(float))


def test_if_exists_fail_replace_and_refused_modes(chinook_model, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    chinook_model.sample_to_directory(tmp_path, scale=0.1)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(WriteError, match=r"11 file\(s\) already exist in .*Artist.csv, "):
        chinook_model.sample_to_directory(tmp_path, scale=0.1)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    chinook_model.reset_sampling(99)
    chinook_model.sample_to_directory(tmp_path, scale=0.1, if_exists="replace")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after.keys() == before.keys() and after["notes.txt"] == b"mine"
    assert after["Track.csv"] != before["Track.csv"]
    for mode in ("truncate", "append"):
        with pytest.raises(ConfigError, match="'fail' or 'replace' for files"):
            chinook_model.sample_to_directory(tmp_path, if_exists=mode)
    with pytest.raises(ConfigError, match="format must be one of csv, parquet"):
        chinook_model.sample_to_directory(tmp_path, format="xlsx")
    (tmp_path / "file").write_text("")
    with pytest.raises(WriteError, match="exists and is not a directory"):
        chinook_model.sample_to_directory(tmp_path / "file", format="parquet")


def _failing(chunks):
    yield from chunks
    raise RuntimeError("the sampler broke")


@pytest.mark.parametrize("format", ["csv", "parquet"])
def test_a_failure_leaves_the_directory_as_it_was(tmp_path, format):
    frame = pd.DataFrame({"id": [1, 2]})
    target = tmp_path / "new" / "dir"
    with pytest.raises(RuntimeError, match="broke"):
        write_files(_failing([{"a": frame, "b": frame}]), target, format=format)
    assert list(tmp_path.iterdir()) == []  # the directories it created are gone too
    (tmp_path / "a.csv").write_text("old")
    with pytest.raises(RuntimeError):
        write_files(_failing([{"a": frame}]), tmp_path, if_exists="replace")
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]
    assert (tmp_path / "a.csv").read_text() == "old"
    with pytest.raises(WriteError, match="Table 'b' is missing from a chunk"):
        write_files([{"a": frame, "b": frame}, {"a": frame}], tmp_path / "x", format=format)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "..", "a\\b"])
def test_table_names_that_are_not_file_names_are_refused(tmp_path, name):
    with pytest.raises(WriteError, match="cannot be written as a file"):
        write_files({name: pd.DataFrame({"x": [1]})}, tmp_path)
    with pytest.raises(WriteError, match="share one file"):
        write_files({"Order": pd.DataFrame(), "order": pd.DataFrame()}, tmp_path)


def _kinds(rows: int, start: int, nothing=None) -> pd.DataFrame:
    ids = np.arange(start, start + rows)
    return pd.DataFrame({
        "id": ids,
        "price": [decimal.Decimal(f"{i}.25") for i in ids],
        "doc": [{"a": int(i), "b": [1, "x"]} for i in ids],
        "tags": [["p", str(i)] for i in ids],
        "token": [uuid.UUID(int=int(i)) for i in ids],
        "raw": [bytes([int(i) % 256, 255]) for i in ids],
        "day": [dt.date(2024, 1, 1) + dt.timedelta(days=int(i)) for i in ids],
        "at": pd.date_range("2024-01-01", periods=rows, freq="h", tz="UTC"),
        "took": pd.to_timedelta(ids, unit="s"),
        "note": ["a, \"quoted\"\nline" if i % 2 else None for i in ids],
        "nothing": pd.Series([nothing] * rows, dtype=object),
        "parent": pd.Series([np.nan if i % 3 == 0 else float(i) for i in ids]),
    })


def test_values_the_formats_cannot_hold_as_they_are(tmp_path):
    """JSON, arrays, uuids as text; bytes as hex in CSV; a column that is NULL in the first chunk
    and not in a later one; decimals whose digits grow from chunk to chunk (Parquet)."""
    chunks = [{"t": _kinds(3, 1)}, {"t": _kinds(4, 1000, nothing=decimal.Decimal("1.5"))}]
    metadata = Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": {
        "id": {"sdtype": "id"}, "parent": {"sdtype": "numerical",
                                           "computer_representation": "Int64"}}}}})
    assert write_files(chunks, tmp_path, format="parquet") == {"t": 7}
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert back["doc"][0] == '{"a": 1, "b": [1, "x"]}' and back["tags"][0] == '["p", "1"]'
    assert back["token"][0] == "00000000-0000-0000-0000-000000000001"
    assert back["price"].tolist()[-1] == decimal.Decimal("1003.25")
    assert back["raw"][0] == b"\x01\xff" and back["day"][0] == dt.date(2024, 1, 2)
    assert back["nothing"].tolist() == [None] * 3 + ["1.5"] * 4
    for column in ("id", "at", "took", "note", "parent"):
        expected = pd.concat([c["t"][column] for c in chunks], ignore_index=True)
        pd.testing.assert_series_equal(back[column], expected)
    assert write_files(chunks, tmp_path, metadata=metadata) == {"t": 7}
    text = (tmp_path / "t.csv").read_text()
    assert text.splitlines()[0] == "id,price,doc,tags,token,raw,day,at,took,note,nothing,parent"
    assert text.splitlines()[1].startswith(
        '1,1.25,"{""a"": 1, ""b"": [1, ""x""]}","[""p"", ""1""]",'
        '00000000-0000-0000-0000-000000000001,\\x01ff,2024-01-02,2024-01-01 00:00:00+00:00,')
    back = pd.read_csv(tmp_path / "t.csv", dtype=str, keep_default_na=False)
    assert back["note"][0] == 'a, "quoted"\nline' and back["note"][1] == ""
    assert back["parent"].tolist() == ["1", "2", "", "1000", "1001", "", "1003"]


@pytest.mark.parametrize("format", ["csv", "parquet"])
def test_an_empty_table_still_gets_a_file_with_its_columns(tmp_path, format):
    metadata = Metadata.from_dict({"tables": {"a": {"columns": {"x": {"sdtype": "numerical"}}},
                                              "b": {"columns": {"y": {"sdtype": "numerical"}}}}})
    chunks = [{"a": pd.DataFrame({"x": [1.5]}), "b": None}, {"a": pd.DataFrame({"x": [2.5]}),
                                                             "b": pd.DataFrame({"y": []})}]
    assert write_files(chunks, tmp_path, format=format, metadata=metadata) == {"a": 2, "b": 0}
    read = pd.read_csv if format == "csv" else pd.read_parquet
    assert read(tmp_path / f"a.{format}")["x"].tolist() == [1.5, 2.5]
    assert list(read(tmp_path / f"b.{format}").columns) == ["y"]
    assert write_files([{"a": None, "b": None}], tmp_path / "none", format=format,
                       metadata=metadata) == {"a": 0, "b": 0}
    assert list(read(tmp_path / "none" / f"b.{format}").columns) == ["y"]
