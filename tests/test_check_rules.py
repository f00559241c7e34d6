"""The source database's CHECKs hold in every synthetic row: the ones that translate become
rules (comparisons with a value or another column, BETWEEN, IN, ``IS NULL OR``), the others are
evaluated by the target database on the sampled rows, which are redrawn until they pass or
refused before the load; without a database target they are named in a warning."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from hma_db import HMASynthesizer, clone, read_tables, reflect
from hma_db.errors import WriteError
from hma_db.schema import AllowedValues, Inequality, ScalarInequality, ScalarRange, rules_from_check

N = 300
# (CHECK as the source declares it, the same as a query on the target: rows that break it)
TABLE_CHECKS = [
    "CHECK (shipped_date >= order_date)",
    "CHECK (qty BETWEEN 2 AND 400)",
    "CHECK (status IN ('new', 'paid', 'sent'))",
    "CHECK (discount IS NULL OR discount >= 0)",
    "CHECK (length(code) = 3)",
    "CHECK (abs(pack) % 2 = 0)",  # a function: the target evaluates it; about half break it
]
BROKEN = {
    "shipped": "shipped_date < order_date",
    "qty": "qty < 2 OR qty > 400",
    "status": "status NOT IN ('new', 'paid', 'sent')",
    "discount": "discount < 0",
    "code": "length(code) <> 3",
    "pack": "abs(pack) % 2 <> 0",
}


def _orders(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ordered = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, N), unit="D")
    shipped = ordered + pd.to_timedelta(rng.integers(0, 20, N), unit="D")
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    return pd.DataFrame({
        "order_id": np.arange(1, N + 1),
        "order_date": ordered.date,
        "shipped_date": pd.Series(shipped.date).where(rng.random(N) > 0.1),
        "qty": rng.integers(2, 401, N),
        "status": rng.choice(["new", "paid", "sent"], N),
        "discount": pd.Series(rng.gamma(1, 0.05, N).round(3)).where(rng.random(N) > 0.3),
        "code": ["".join(rng.choice(letters, 3)) for _ in range(N)],
        "pack": rng.integers(1, 1500, N) * 2,
    })


def _create(url: str, frame: pd.DataFrame) -> None:
    engine = sa.create_engine(url)
    text = engine.dialect.name == "mysql" and "VARCHAR(10)" or "TEXT"
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, order_date DATE NOT NULL, "
            f"shipped_date DATE, qty INTEGER, status {text}, discount FLOAT, code {text}, "
            f"pack INTEGER, {', '.join(TABLE_CHECKS)})"))
        frame.to_sql("orders", conn, if_exists="append", index=False)
    engine.dispose()


def _broken(url: str) -> dict[str, int]:
    """Rows of the target's orders that break each CHECK, counted by the target itself."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {name: conn.execute(sa.text(f"SELECT count(*) FROM orders WHERE {where}")).scalar()
               for name, where in BROKEN.items()}
    engine.dispose()
    return out


@pytest.fixture
def source(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'shop.sqlite'}"
    _create(url, _orders())
    return url


def test_check_forms_of_each_dialect_translate():
    cols = ["qty", "price", "status", "order_date", "shipped_date", "code"]
    cases = {
        "((shipped_date >= order_date))": Inequality("order_date", "shipped_date"),
        "shipped_date IS NULL OR shipped_date > order_date":
            Inequality("order_date", "shipped_date", True),
        "`qty` between 1 and 100": ScalarRange("qty", 1, 100),
        "((price >= (0)::numeric))": ScalarInequality("price", ">=", 0),
        "0 < qty": ScalarInequality("qty", ">", 0),
        "((status)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))":
            AllowedValues("status", ["a", "b"]),
        "status = 'a'": AllowedValues("status", ["a"]),
    }
    for text, expected in cases.items():
        read = rules_from_check(text, cols, "t")
        expected.table_name = "t"
        assert read.translated and [r.to_dict()["constraint_parameters"] for r in read.rules] == \
            [expected.to_dict()["constraint_parameters"]], text
        assert type(read.rules[0]) is type(expected)
    both = rules_from_check("((qty >= 1) AND (qty <= 100))", cols, "t")
    assert both.translated and [r.describe() for r in both.rules] == ["qty >= 1", "qty <= 100"]
    for text in ["length(code) = 3", "lower(code) = code", "price <> 0", "qty > 0 OR price > 0",
                 "abs(qty) % 2 = 0", "nosuch > 1"]:
        assert not rules_from_check(text, cols, "t").translated, text


def test_translated_checks_are_kept_and_the_others_named_in_a_warning(source, tmp_path):
    metadata = reflect(source)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1, find_rules=False)
    synthesizer.fit(read_tables(source, metadata))
    kinds = sorted(type(c).__name__ for c in synthesizer.get_constraints())
    assert kinds == ["AllowedValues", "Inequality", "ScalarInequality", "ScalarRange"]
    assert all(c.origin == "check" for c in synthesizer.get_constraints())
    with pytest.warns(UserWarning, match=r"not evaluated by sample\(\)") as caught:
        out = synthesizer.sample(scale=2.0)
    text = str(caught[0].message)
    assert "orders: CHECK (length(code) = 3)" in text and "orders: CHECK (abs(pack) % 2 = 0)" in text
    synthesizer.validate_constraints(out)
    pack = out["orders"]["pack"].dropna().to_numpy()
    assert (pack % 2 != 0).any()  # without a database nothing keeps the untranslated CHECK
    for chunk_rows in (None, 100):
        with pytest.warns(UserWarning, match=r"not evaluated by sample.*length\(code\) = 3"):
            synthesizer.sample_to_directory(tmp_path / f"csv_{chunk_rows}", chunk_rows=chunk_rows)


@pytest.mark.parametrize("target", ["sqlite", "postgres", "mariadb"])
@pytest.mark.parametrize("chunk_rows", [None, 150])
def test_a_source_with_checks_clones_and_every_check_holds(request, source, tmp_path, target,
                                                           chunk_rows):
    if target == "sqlite":
        url = f"sqlite:///{tmp_path / 'out.sqlite'}"
    else:
        fixture = "postgres_databases" if target == "postgres" else "mysql_databases"
        url = request.getfixturevalue(fixture).new("i18_checks")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the target evaluates the CHECKs: no warning
        clone(source, url, seed=5, scale=3.0, chunk_rows=chunk_rows)
    assert _broken(url) == dict.fromkeys(BROKEN, 0)
    frame = read_tables(url, reflect(url))["orders"]
    assert len(frame) == 3 * N
    assert frame["pack"].nunique() > N  # the redrawn rows did not all take one value


@pytest.mark.parametrize(("source_kind", "target"), [("mariadb", "sqlite"),
                                                    ("mariadb", "postgres"),
                                                    ("postgres", "mariadb"),
                                                    ("postgres", "sqlite")])
def test_checks_of_each_source_dialect_hold_in_another_dialect(request, tmp_path, source_kind,
                                                               target):
    # Each dialect writes its CHECKs back in its own words (MariaDB: `code`, char_length;
    # PostgreSQL: ((qty >= 2) AND (qty <= 400)), = ANY (ARRAY[...])): they are read from
    # there and evaluated, or translated, for another dialect.
    servers = {"postgres": "postgres_databases", "mariadb": "mysql_databases"}
    source = request.getfixturevalue(servers[source_kind]).new("i18_src_dialect")
    _create(source, _orders(2))
    if target == "sqlite":
        url = f"sqlite:///{tmp_path / 'out.sqlite'}"
    else:
        url = request.getfixturevalue(servers[target]).new("i18_dst_dialect")
    clone(source, url, seed=4, scale=2.0, chunk_rows=200)
    assert _broken(url) == dict.fromkeys(BROKEN, 0)
    assert len(read_tables(url, reflect(url))["orders"]) == 2 * N


def test_same_dialect_postgres_clone_keeps_its_checks(postgres_databases):
    source, target = postgres_databases.new("i18_src"), postgres_databases.new("i18_dst")
    _create(source, _orders(1))
    clone(source, target, seed=2, scale=1.0, chunk_rows=100)
    assert _broken(target) == dict.fromkeys(BROKEN, 0)
    engine = sa.create_engine(target)
    with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.exec_driver_sql("UPDATE orders SET pack = 3")  # the target has the source's CHECKs
    engine.dispose()


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_check_no_row_can_keep_is_refused_before_anything_is_written(request, source, tmp_path,
                                                                       target):
    metadata = reflect(source)
    sql_table = next(t for t in metadata.sql_metadata.tables.values() if t.name == "orders")
    sql_table.append_constraint(sa.CheckConstraint("length(code) = 7", name="code_len"))
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=3)
    synthesizer.fit(read_tables(source, reflect(source)))
    if target == "sqlite":
        path = tmp_path / "refused.sqlite"
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_databases").new("i18_refused")
    # with CHECK (length(code) = 3) of the source no row can keep it
    with pytest.raises(WriteError, match=r"Table 'orders': [1-9]\d* of 300 sampled rows break "
                                         r"CHECK code_len \(length\(code\) = 7\) in the target"):
        synthesizer.sample_to_database(url)
    if target == "sqlite":
        assert not path.exists()
    else:
        assert "orders" not in sa.inspect(sa.create_engine(url)).get_table_names()
