"""Chunked sampling and writing: exact totals, keys unique across chunks, valid references,
and an all-or-nothing load across chunks."""

from __future__ import annotations

import copy
import random
import re
import sqlite3
import string
import uuid

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import CHINOOK_SQLITE, scaled_rows

from hma_db import HMASynthesizer, reflect
from hma_db.errors import SamplingError, WriteError
from hma_db.schema.metadata import key_columns
from hma_db.source.read import read_tables
from hma_db.synthesizer import files as model_files
from hma_db.synthesizer.chunks import chunk_plan
from hma_db.target.write import write_chunks
from hma_db.transform import personal
from hma_db.transform.keys.keygen import generate_key


@pytest.fixture(scope="module")
def fitted():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    synthesizer = HMASynthesizer(metadata, seed=3, verbose=False)
    synthesizer.fit(read_tables(url, metadata))
    return metadata, synthesizer


def _concat(chunks: list[dict[str, pd.DataFrame]]) -> dict[str, pd.DataFrame]:
    return {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]}


def test_chunks_have_exact_totals_unique_keys_and_valid_references(fitted):
    metadata, synthesizer = fitted
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=1500))
    assert len(chunks) > 3
    data = _concat(chunks)
    for table, frame in data.items():
        assert len(frame) == scaled_rows(metadata, table, 2.0), table
        pk = metadata.primary_key(table)
        assert not frame.duplicated(pk).any(), table
    for rel in metadata.relationships:
        fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
        child, parent = data[rel["child_table_name"]], data[rel["parent_table_name"]]
        found = pd.MultiIndex.from_frame(child[fk].dropna()).isin(
            pd.MultiIndex.from_frame(parent[pk]))
        assert found.all(), rel
    # Each chunk references only rows of itself or of earlier chunks.
    seen: dict[str, set] = {t: set() for t in metadata.tables}
    for chunk in chunks:
        for table, frame in chunk.items():
            seen[table] |= set(frame[metadata.primary_key(table)[0]])
        for rel in metadata.relationships:
            values = set(chunk[rel["child_table_name"]][rel["child_foreign_key"]].dropna())
            assert values <= seen[rel["parent_table_name"]], rel


def test_chunk_plan_keeps_small_tables_resident_and_splits_the_rest(fitted):
    metadata, _ = fitted
    totals = {t: metadata.row_counts[t] * 10 for t in metadata.tables}
    resident, chunks = chunk_plan(metadata, totals, 1000)
    assert {"Genre", "MediaType", "Employee"} <= resident and "Track" not in resident
    for table in metadata.tables:
        assert sum(c[table] for c in chunks) == totals[table]
    assert max(c["PlaylistTrack"] for c in chunks) <= 1000 + 1


def test_memory_bound_chunks_match_one_shot_sizes(fitted):
    metadata, synthesizer = fitted
    one_shot = synthesizer.sample(scale=0.5)
    chunked = _concat(list(synthesizer.sample_chunks(scale=0.5, chunk_rows=400)))
    assert {t: len(f) for t, f in one_shot.items()} == {t: len(f) for t, f in chunked.items()}
    for table in metadata.tables:
        assert list(chunked[table].columns) == list(one_shot[table].columns)
        assert dict(chunked[table].dtypes) == dict(one_shot[table].dtypes), table


def test_chunked_write_loads_every_chunk(fitted, tmp_path):
    metadata, synthesizer = fitted
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    rows = write_chunks(synthesizer.sample_chunks(scale=1.5, chunk_rows=2000), metadata, target)
    assert rows == {t: scaled_rows(metadata, t, 1.5) for t in rows}
    back = read_tables(target, reflect(target))
    assert {t: len(f) for t, f in back.items()} == rows


def _interrupted(chunks, after: int):
    for number, chunk in enumerate(chunks):
        if number == after:
            raise KeyboardInterrupt
        yield chunk


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                                  pytest.param("mariadb", marks=pytest.mark.mysql)])
def test_an_interrupted_chunked_load_leaves_the_target_as_it_was(fitted, tmp_path, kind, request):
    metadata, synthesizer = fitted
    if kind == "sqlite":
        target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    else:
        servers = "postgres_databases" if kind == "postgresql" else "mysql_databases"
        target = request.getfixturevalue(servers).new("chunks")
    first = write_chunks(synthesizer.sample_chunks(scale=0.3, chunk_rows=5000), metadata, target)
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)

    def counts():
        with engine.connect() as conn:
            quote = conn.dialect.identifier_preparer.quote
            return {t: conn.execute(sa.text(f"SELECT count(*) FROM {quote(t)}")).scalar()
                    for t in metadata.tables}

    before = counts()
    assert before == first
    with pytest.raises(KeyboardInterrupt):
        write_chunks(_interrupted(synthesizer.sample_chunks(scale=2.0, chunk_rows=1000), 3),
                     metadata, target, if_exists="replace")
    assert counts() == before
    # A chunk the target refuses (a duplicate key in a later chunk) also rolls everything back.
    chunks = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=1000))
    chunks[2]["Track"] = pd.concat([chunks[2]["Track"], chunks[1]["Track"].iloc[:1]])
    with pytest.raises(WriteError):
        write_chunks(chunks, metadata, target, if_exists="truncate")
    assert counts() == before
    engine.dispose()


def test_write_progress_counts_every_row_of_every_chunk(fitted, tmp_path):
    from hma_db.progress import RowBar

    metadata, synthesizer = fitted
    target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    bar = RowBar("write", None, enabled=False)
    rows = write_chunks(synthesizer.sample_chunks(scale=1.0, chunk_rows=1000), metadata, target,
                        progress=bar.batch, batch_size=300)
    assert bar.rows == sum(rows.values())


# ------------------------------------------------------- every key kind, many small chunks
_KEYED_SCHEMA = """
CREATE TABLE tag (id INTEGER PRIMARY KEY, label VARCHAR(10) NOT NULL);
CREATE TABLE account (code VARCHAR(8) PRIMARY KEY, email VARCHAR(60) NOT NULL UNIQUE,
                      tier VARCHAR(6));
CREATE TABLE account_tag (account_code VARCHAR(8) NOT NULL REFERENCES account(code),
                          tag_id INTEGER NOT NULL REFERENCES tag(id),
                          PRIMARY KEY (account_code, tag_id));
CREATE TABLE device (id CHAR(36) PRIMARY KEY,
                     account_code VARCHAR(8) NOT NULL REFERENCES account(code),
                     serial VARCHAR(8) NOT NULL UNIQUE, kind VARCHAR(6));
CREATE TABLE reading (device_id CHAR(36) NOT NULL REFERENCES device(id), seq INTEGER NOT NULL,
                      value REAL, PRIMARY KEY (device_id, seq));
CREATE TABLE alert (id INTEGER PRIMARY KEY, device_id CHAR(36) NOT NULL, seq INTEGER NOT NULL,
                    level VARCHAR(5), FOREIGN KEY (device_id, seq) REFERENCES reading(device_id, seq));
"""


def _keyed_source(path) -> str:
    """A patterned, a uuid, an integer and a composite primary key, a composite foreign key,
    a unique email and a unique patterned column."""
    rng = random.Random(0)
    con = sqlite3.connect(path)
    con.executescript(_KEYED_SCHEMA)
    con.executemany("INSERT INTO tag VALUES (?, ?)", [(i, f"t{i}") for i in range(1, 6)])
    codes = sorted({"AC-" + "".join(rng.choices(string.ascii_uppercase, k=3))
                    + "".join(rng.choices(string.digits, k=2)) for _ in range(60)})
    con.executemany("INSERT INTO account VALUES (?, ?, ?)",
                    [(c, f"user{i}@example.com", rng.choice(["gold", "silver"]))
                     for i, c in enumerate(codes)])
    con.executemany("INSERT INTO account_tag VALUES (?, ?)",
                    sorted({(rng.choice(codes), rng.randint(1, 5)) for _ in range(100)}))
    devices = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(150)]
    con.executemany("INSERT INTO device VALUES (?, ?, ?, ?)",
                    [(d, rng.choice(codes), f"SN{i:06d}", rng.choice(["meter", "valve"]))
                     for i, d in enumerate(devices)])
    readings = [(d, s, rng.gauss(10, 3)) for d in devices for s in range(1, rng.randint(1, 5) + 1)]
    con.executemany("INSERT INTO reading VALUES (?, ?, ?)", readings)
    con.executemany("INSERT INTO alert VALUES (?, ?, ?, ?)",
                    [(i + 1, *rng.choice(readings)[:2], rng.choice(["low", "high"]))
                     for i in range(100)])
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    url = _keyed_source(tmp_path_factory.mktemp("keyed") / "source.sqlite")
    metadata = reflect(url)
    # Narrow patterns (676 and 1,000 values for 120 and 300 rows): chunks drawing at random
    # would repeat keys; a sequence cannot.
    metadata.tables["account"]["columns"]["code"]["regex_format"] = "AC-[A-Z]{2}"
    metadata.tables["device"]["columns"]["serial"]["regex_format"] = "SN[0-9]{3}"
    synthesizer = HMASynthesizer(metadata, seed=5, verbose=False)
    synthesizer.fit(read_tables(url, metadata))
    return metadata, synthesizer


@pytest.fixture
def small_pools(monkeypatch):
    """40 Faker values per unique column: 120 emails need numbered ones in later rounds."""
    monkeypatch.setattr(personal, "POOL_SIZE", 40)


def test_keyed_schema_covers_every_key_kind(keyed, tmp_path):
    _, synthesizer = keyed
    synthesizer.save(tmp_path / "model.json")  # the transformers' column roles, as saved
    saved = model_files.load(tmp_path / "model.json")["transformers"]
    specs = {t: d["columns"] for t, d in saved.items()}
    kinds = {(t, c): spec.get("key", {}).get("kind", spec["role"])
             for t, columns in specs.items() for c, spec in columns.items()}
    assert kinds[("account", "code")] == "pattern" and kinds[("device", "id")] == "uuid"
    assert kinds[("device", "serial")] == "pattern" and kinds[("alert", "id")] == "int"
    assert kinds[("account", "email")] == "personal"
    assert specs["account"]["email"]["unique"]


def _check_unique_and_resolved(metadata, chunks) -> dict[str, pd.DataFrame]:
    data = _concat(chunks)
    for table, frame in data.items():
        assert len(frame) == scaled_rows(metadata, table, 2.0), table
        for key in [metadata.primary_key(table), *metadata.alternate_keys(table)]:
            key = key_columns(key)
            assert not frame.duplicated(key).any(), (table, key)
    seen: dict[str, pd.DataFrame] = {}
    for chunk in chunks:  # every reference resolves in its own chunk or an earlier one
        seen = {t: pd.concat([seen.get(t), f]) if t in seen else f for t, f in chunk.items()}
        for rel in metadata.relationships:
            fk, pk = key_columns(rel["child_foreign_key"]), key_columns(rel["parent_primary_key"])
            child, parent = chunk[rel["child_table_name"]], seen[rel["parent_table_name"]]
            assert pd.MultiIndex.from_frame(child[fk].dropna()).isin(
                pd.MultiIndex.from_frame(parent[pk])).all(), rel
    return data


def test_every_key_kind_is_unique_across_many_small_chunks(keyed, small_pools):
    metadata, synthesizer = keyed
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=25))
    assert len(chunks) > 20
    data = _check_unique_and_resolved(metadata, chunks)
    assert data["account"]["code"].str.fullmatch(r"AC-[A-Z]{2}").all()
    assert data["device"]["serial"].str.fullmatch(r"SN[0-9]{3}").all()
    assert data["device"]["id"].map(lambda v: uuid.UUID(v).version == 4).all()
    emails = data["account"]["email"]
    assert emails.str.fullmatch(r"[^@\s]+@[^@\s]+\.\w+").all() and emails.str.len().max() <= 60
    assert emails.str.contains(r"[a-z][0-9]+@").any()  # later rounds are numbered
    # Each chunk gets its even share of every chunked table (the totals are exact above).
    share = scaled_rows(metadata, "reading", 2.0) / len(chunks)
    assert all(int(share) <= len(c["reading"]) <= int(share) + 1 for c in chunks)


def test_the_same_seed_gives_the_same_chunks(keyed):
    _, synthesizer = keyed
    twin = copy.deepcopy(synthesizer)
    first = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=40))
    second = list(twin.sample_chunks(scale=1.0, chunk_rows=40))
    assert len(first) == len(second) > 5
    for one, two in zip(first, second, strict=True):
        for table in one:
            pd.testing.assert_frame_equal(one[table], two[table])


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_chunked_write_keeps_the_targets_unique_constraints(keyed, small_pools, tmp_path, kind,
                                                            request):
    metadata, synthesizer = keyed
    if kind == "sqlite":
        target = f"sqlite:///{tmp_path / 'out.sqlite'}"
    else:
        target = request.getfixturevalue("postgres_databases").new("keyed")
    rows = write_chunks(synthesizer.sample_chunks(scale=2.0, chunk_rows=25), metadata, target)
    assert rows == {t: scaled_rows(metadata, t, 2.0) for t in metadata.tables}
    engine = sa.create_engine(target, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            email = conn.execute(sa.text("SELECT email FROM account LIMIT 1")).scalar()
            serial = conn.execute(sa.text("SELECT serial FROM device LIMIT 1")).scalar()
        # The constraints are on: a repeated email or serial is refused.
        for statement, value in [("INSERT INTO account (code, email) VALUES ('ZZ-ZZZ99', :v)",
                                  email),
                                 ("INSERT INTO device (id, account_code, serial) SELECT "
                                  "'00000000-0000-4000-8000-000000000000', code, :v FROM account "
                                  "LIMIT 1", serial)]:
            with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
                conn.execute(sa.text(statement), {"v": value})
    finally:
        engine.dispose()


def test_a_table_keyed_by_resident_parents_is_sampled_whole(keyed):
    metadata, synthesizer = keyed
    # account (60 rows) and tag fit in a chunk; account_tag (86 rows) does not, but chunks
    # drawing their own (account, tag) pairs would repeat pairs.
    chunks = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=70))
    assert len(chunks) > 3
    assert [len(c["account_tag"]) > 0 for c in chunks] == [True] + [False] * (len(chunks) - 1)
    pairs = _concat(chunks)["account_tag"]
    assert len(pairs) == metadata.row_counts["account_tag"] and not pairs.duplicated().any()


def test_a_key_of_resident_parents_in_a_chunked_table_is_reported(caplog):
    from hma_db import Metadata

    ids = {"sdtype": "id"}
    metadata = Metadata.from_dict({"tables": {
        "a": {"primary_key": "id", "columns": {"id": ids}},
        "b": {"primary_key": "id", "columns": {"id": ids}},
        "c": {"primary_key": "id", "columns": {"id": ids}},
        "j": {"primary_key": ["a_id", "b_id"],
              "columns": {"a_id": ids, "b_id": ids, "c_id": ids}}},
        "relationships": [{"parent_table_name": p, "parent_primary_key": "id",
                           "child_table_name": "j", "child_foreign_key": f"{p}_id"}
                          for p in "abc"]})
    with caplog.at_level("WARNING", logger="hma_db.synthesizer.chunks"):
        resident, _ = chunk_plan(metadata, {"a": 5, "b": 5, "c": 1000, "j": 20}, 100)
    assert resident == {"a", "b"}
    assert "table j: its key ['a_id', 'b_id'] is made of references to tables sampled once (a, b)" \
        in caplog.text


# ------------------------------------------------------------------- the sequences alone
@pytest.mark.parametrize("spec", [
    {"kind": "pattern", "pattern": "[A-Z]{3}"},
    {"kind": "pattern", "pattern": "[a-z]{30}"},  # more than 2**62 values
    {"kind": "uuid"},
    {"kind": "prefix", "prefix": "C", "max_length": 4},  # the run outgrows the counter
    {"kind": "int"},
])
def test_key_sequences_never_repeat_across_spans(spec):
    rng = np.random.default_rng(0)
    spans = [(1, 700), (701, 9000), (9701, 7000)]
    parts = [generate_key(spec, n, rng, start, "'t.c'", seed=11, total=16_700)
             for start, n in spans]
    values = pd.Series(np.concatenate(parts))
    assert values.is_unique and len(values) == 16_700
    again = generate_key(spec, 9000, rng, 701, "'t.c'", seed=11, total=16_700)
    assert (again == parts[1]).all()  # a function of the seed and the position only
    if spec["kind"] == "prefix":
        assert values.str.len().max() <= 4 and values.str.startswith("C").all()


def test_a_pattern_refuses_a_run_longer_than_its_values():
    with pytest.raises(SamplingError, match="allows only 676 distinct values; 700 unique"):
        generate_key({"kind": "pattern", "pattern": "[A-Z]{2}"}, 10, np.random.default_rng(0),
                     1, "'t.c'", seed=1, total=700)


@pytest.mark.parametrize("provider,max_length", [("email", 24), ("name", 12), ("city", None)])
def test_unique_personal_data_never_repeats_across_spans(provider, max_length, monkeypatch):
    monkeypatch.setattr(personal, "POOL_SIZE", 60)
    spec = {"provider": provider, "unique": True, "max_length": max_length}
    locales = ("en_US", "fr_FR")
    rng = np.random.default_rng(0)
    parts = []
    for start, n in [(0, 300), (300, 1700), (2000, 500)]:
        rows = personal.row_locales(n, locales, rng)
        parts.append(personal.generate(spec, rows, rng, locales, "'t.c'",
                                       index=np.arange(start, start + n), seed=4, total=2500))
    values = pd.Series(np.concatenate(parts))
    assert values.is_unique and values.notna().all()
    if max_length:
        assert values.str.len().max() <= max_length


# ------------------------------------------------------- progress: log lines and bars
def _stage_of(record) -> str | None:
    """The clone stage an INFO line of hma_db is about (the model's and the transformers' lines
    count for fit, the synthesizer's for fit or sample)."""
    if record.name == "hma_db.source.read":
        return "read"
    if record.name in ("hma_db.model.hierarchy", "hma_db.transform.table", "hma_db.model.copula"):
        return "fit"
    if record.name in ("hma_db.synthesizer.hma", "hma_db.synthesizer.chunks"):
        return "sample" if "sampled" in record.getMessage() else "fit"
    if record.name.startswith("hma_db.target.write"):
        return "write"
    return None


def _stage_lines(records, tables) -> dict[str, dict[str, list[str]]]:
    """{stage: {table: INFO messages of the stage that name the table}}."""
    out: dict[str, dict[str, list[str]]] = {
        s: {t: [] for t in tables} for s in ("read", "fit", "sample", "write")}
    for record in records:
        stage = _stage_of(record)
        if record.levelno != 20 or stage is None:
            continue
        message = record.getMessage()
        for table in tables:
            if re.search(rf"(^|\s){table}:", message):
                out[stage][table].append(message)
    return out


@pytest.mark.parametrize("chunk_rows, max_rows", [(None, None), (1000, 3000)])
def test_one_info_line_per_table_per_stage(tmp_path, caplog, chunk_rows, max_rows):
    """Logs get one INFO line per table for each of read, fit, sample and write, whether the
    output is sampled at once or in chunks and whether the source is read whole or a subset;
    the read line of a subset names the full row count."""
    import logging

    from hma_db.pipeline import clone

    source = f"sqlite:///{CHINOOK_SQLITE}"
    tables = list(reflect(source).tables)
    with caplog.at_level(logging.INFO, logger="hma_db"):
        result = clone(source, f"sqlite:///{tmp_path / 'out.sqlite'}", seed=2,
                       chunk_rows=chunk_rows, max_rows=max_rows)
    lines = _stage_lines(caplog.records, tables)
    for stage, per_table in lines.items():
        for table, messages in per_table.items():
            assert len(messages) == 1, (stage, table, messages)
    for table in tables:
        assert re.search(rf"\b{result.rows[table]} row", lines["write"][table][0])
        assert re.search(rf"\b{result.rows[table]} rows", lines["sample"][table][0])
    read = lines["read"]["InvoiceLine"][0]
    assert ("of 2240 rows" in read) is (max_rows is not None), read
    if max_rows is not None:
        assert result.rows_read["InvoiceLine"] < 2240 == result.rows["InvoiceLine"]


@pytest.mark.parametrize("max_rows", [None, 3000])
def test_progress_bars_count_rows_per_stage_with_an_eta(tmp_path, capsys, max_rows):
    """verbose=True: read, sample and write bars in rows, each with its total (so tqdm shows the
    time left) and the table being worked on."""
    from hma_db.pipeline import clone

    source = f"sqlite:///{CHINOOK_SQLITE}"
    clone(source, f"sqlite:///{tmp_path / 'out.sqlite'}", seed=2, chunk_rows=1000, verbose=True,
          max_rows=max_rows)
    err = capsys.readouterr().err.replace("\r", "\n")
    total = "15.6k"
    for stage in ("sample", "write"):
        done = [line for line in err.splitlines()
                if line.startswith(f"{stage}: 100%") and f"{total}/{total}" in line]
        assert done, (stage, err[-2000:])
        # elapsed<remaining, the rate in rows, the table shown beside the bar
        assert re.search(r"\[\d\d:\d\d<\d\d:\d\d, [\d.]+k?rows/s, \w+\]", done[-1]), done[-1]
    read = [line for line in err.splitlines() if line.startswith("read:")]
    assert read and re.search(r"\d\d:\d\d<\d\d:\d\d", read[-1]), read[-3:]


def test_a_resident_parents_children_keep_their_counts_across_chunks():
    """Albums fit one chunk and stay resident; their tracks are chunked. Each chunk spread
    its tracks over every album (Chinook at scale 3 in 14 chunks: each of 731 albums got 14-15
    tracks, one a chunk; real 1-57). The counts are now drawn once for the run and cut into
    the chunks, as in one chunk: the same spread of tracks per album."""
    from hma_db import Metadata

    rng = np.random.default_rng(3)
    albums = pd.DataFrame({"album_id": np.arange(1, 301), "year": rng.integers(1960, 2020, 300)})
    counts = np.minimum(rng.geometric(0.08, 300), 80)
    owner = np.repeat(albums.album_id.to_numpy(), counts)
    tracks = pd.DataFrame({"track_id": np.arange(1, len(owner) + 1), "album_id": owner,
                           "seconds": rng.gamma(4, 60, len(owner)).round()})
    metadata = Metadata.from_dict({"tables": {
        "albums": {"primary_key": "album_id", "columns": {
            "album_id": {"sdtype": "id"}, "year": {"sdtype": "numerical"}}},
        "tracks": {"primary_key": "track_id", "columns": {
            "track_id": {"sdtype": "id"}, "album_id": {"sdtype": "id"},
            "seconds": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "albums", "parent_primary_key": "album_id",
                           "child_table_name": "tracks", "child_foreign_key": "album_id"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit({"albums": albums, "tracks": tracks})
    chunks = list(synthesizer.sample_chunks(scale=1.0, chunk_rows=len(albums) + 100))
    assert len(chunks) >= 8 and all(len(c["albums"]) == 0 for c in chunks[1:])
    out = _concat(chunks)
    per_album = out["tracks"].groupby("album_id").size().reindex(
        out["albums"].album_id, fill_value=0)
    whole = synthesizer.sample(scale=1.0)
    alone = whole["tracks"].groupby("album_id").size().reindex(whole["albums"].album_id,
                                                                fill_value=0)
    real = pd.Series(counts)
    for found in (per_album, alone):
        assert abs((found <= 5).mean() - (real <= 5).mean()) < 0.1
        assert found.max() > 0.5 * real.max()
        assert abs(found.std() - real.std()) < 0.3 * real.std()
