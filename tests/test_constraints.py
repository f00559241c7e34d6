"""Business rules hold in every sampled row: SDV's constraint classes through the synthesizer's
API, rules found in the data, refusal of data that breaks a rule, saving and loading, chunks."""

from __future__ import annotations

import decimal
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE

from hma_db import (
    FixedCombinations,
    FixedIncrements,
    HMASynthesizer,
    Inequality,
    Metadata,
    OneHotEncoding,
    ProgrammableConstraint,
    Range,
    SingleTableProgrammableConstraint,
    clone,
    evaluate,
    load_constraints,
    load_synthesizer,
    read_tables,
    reflect,
)
from hma_db.cli.main import cli
from hma_db.errors import DataError, ModelFileError, SynthesizerInputError

N = 400


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 700, N), unit="D")
    hot = rng.integers(0, 3, N)
    city = rng.choice(["Paris", "Lyon", "Berlin", "Munich"], N)
    country = np.where(np.isin(city, ["Paris", "Lyon"]), "France", "Germany")
    low = rng.normal(50, 10, N).round(2)
    middle = low + 0.01 + rng.gamma(2, 3, N).round(2)
    return pd.DataFrame({
        "id": np.arange(N),
        "start": start,
        # about one in five is still open; others end 0 to 90 days after the start
        "end": (start + pd.to_timedelta(rng.integers(0, 90, N), unit="D")).where(
            rng.random(N) > 0.2),
        "low": low, "middle": middle, "high": middle + 0.01 + rng.exponential(5, N).round(2),
        "city": city, "country": country,
        "card": (hot == 0).astype(int), "cash": (hot == 1).astype(int),
        "transfer": (hot == 2).astype(int),
        "salary": rng.integers(20, 90, N) * 500,
    })


def _metadata() -> Metadata:
    columns = {"id": {"sdtype": "id"}, "start": {"sdtype": "datetime"},
               "end": {"sdtype": "datetime"}, "city": {"sdtype": "categorical"},
               "country": {"sdtype": "categorical"}, "salary": {"sdtype": "numerical"}}
    columns |= {c: {"sdtype": "numerical"} for c in ("low", "middle", "high")}
    columns |= {c: {"sdtype": "categorical"} for c in ("card", "cash", "transfer")}
    return Metadata.from_dict({"tables": {"deals": {"columns": columns, "primary_key": "id"}},
                               "relationships": []})


RULES = [
    Inequality("start", "end", table_name="deals"),
    Range("low", "middle", "high", strict_boundaries=True, table_name="deals"),
    FixedCombinations(["city", "country"], table_name="deals"),
    OneHotEncoding(["card", "cash", "transfer"], table_name="deals"),
    FixedIncrements("salary", increment_value=500, table_name="deals"),
]


@pytest.fixture(scope="module")
def deals():
    synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=5, find_rules=False)
    synthesizer.add_constraints(RULES)
    synthesizer.fit({"deals": _frame()})
    return synthesizer


def test_each_predefined_class_holds_in_every_sampled_row(deals):
    for scale in (1, 3):  # whole and in chunks
        chunks = list(deals.sample_chunks(scale=scale, chunk_rows=150))
        assert len(chunks) > 1
        whole = pd.concat([c["deals"] for c in chunks], ignore_index=True)
        for rule in RULES:
            assert rule.is_valid(whole).all(), rule
        deals.validate_constraints({"deals": whole})
    out = deals.sample(scale=3.0)["deals"]
    assert len(out) == 3 * N
    for rule in RULES:
        assert rule.is_valid(out).all(), rule
    deals.validate_constraints({"deals": out})
    assert set(zip(out.city, out.country, strict=True)) <= {("Paris", "France"), ("Lyon", "France"),
                                                ("Berlin", "Germany"), ("Munich", "Germany")}
    # By construction, not by clipping: gaps spread out, few rows sit on the boundary.
    assert (out.end == out.start).mean() < 0.1
    assert out.end.isna().mean() == pytest.approx(0.2, abs=0.07)
    assert (out.middle - out.low).min() > 0 and (out.high - out.middle).min() > 0


def test_without_the_rules_the_model_breaks_them():
    synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=5, find_rules=False)
    synthesizer.fit({"deals": _frame()})
    out = synthesizer.sample(scale=3.0)["deals"]
    assert not RULES[0].is_valid(out).all()  # the test above would fail without the rules
    with pytest.raises(DataError, match="Inequality"):
        synthesizer.add_constraints([RULES[0]])
        synthesizer.validate_constraints({"deals": out})


def test_data_that_breaks_a_rule_is_refused_with_count_and_examples():
    frame = _frame()
    frame.loc[[3, 7], "end"] = frame.loc[[3, 7], "start"] - pd.Timedelta(days=1)
    synthesizer = HMASynthesizer(_metadata(), verbose=False, find_rules=False)
    synthesizer.add_constraints([Inequality("start", "end", table_name="deals")])
    with pytest.raises(DataError, match=r"2 of 400 real rows break Inequality") as info:
        synthesizer.fit({"deals": frame})
    assert "start" in str(info.value) and "\n3 " in str(info.value)


def test_bad_constraints_are_refused_when_added():
    synthesizer = HMASynthesizer(_metadata(), verbose=False)
    with pytest.raises(SynthesizerInputError, match="no column 'nope'"):
        synthesizer.add_constraints([Inequality("start", "nope", table_name="deals")])
    with pytest.raises(SynthesizerInputError, match="is a key"):
        synthesizer.add_constraints([Inequality("id", "low", table_name="deals")])
    with pytest.raises(SynthesizerInputError, match="table 'other'"):
        synthesizer.add_constraints([Inequality("low", "high", table_name="other")])
    with pytest.raises(SynthesizerInputError, match="not a constraint"):
        synthesizer.add_constraints([object()])


def test_constraints_round_trip_through_json_and_model_files(deals, tmp_path):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([r.to_dict() for r in RULES]))
    assert load_constraints(path) == RULES
    with pytest.raises(SynthesizerInputError, match="Unknown constraint class 'os.system'"):
        load_constraints([{"constraint_class": "os.system", "table_name": "deals",
                           "constraint_parameters": {}}])
    for name in ("model.json", "model.pkl"):
        deals.save(tmp_path / name)
        loaded = load_synthesizer(tmp_path / name)
        assert loaded.get_constraints() == deals.get_constraints()
        out = loaded.sample(scale=2.0)
        loaded.validate_constraints(out)


def test_a_model_file_naming_another_class_is_refused(deals, tmp_path):
    deals.save(tmp_path / "model.json")
    text = (tmp_path / "model.json").read_text().replace('"FixedIncrements"', '"Popen"')
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(ModelFileError, match="Unknown constraint class 'Popen'"):
        load_synthesizer(tmp_path / "bad.json")


def test_a_model_file_with_an_unknown_representation_is_refused(deals, tmp_path):
    deals.save(tmp_path / "model.json")
    text = (tmp_path / "model.json").read_text()
    assert '"rep": "' in text
    bad = re.sub(r'"rep": "[^"]*"', '"rep": "decimal:99999999"', text, count=1)
    (tmp_path / "bad.json").write_text(bad)
    with pytest.raises(ModelFileError, match="unknown representation 'decimal:99999999'"):
        load_synthesizer(tmp_path / "bad.json")


class Positive(SingleTableProgrammableConstraint):
    """Amounts kept positive by modeling their logarithm (SDV's programmable interface)."""

    def __init__(self, column: str, table_name: str):
        self.column, self.table_name = column, table_name
        self.fitted = False

    def fit(self, data, metadata):
        self.fitted = True

    def transform(self, data):
        return data.assign(**{self.column: np.log(data[self.column])})

    def reverse_transform(self, data):
        return data.assign(**{self.column: np.exp(data[self.column])})

    def is_valid(self, data):
        return data[self.column] > 0


def test_a_programmable_constraint_runs_and_is_not_saved(tmp_path):
    frame = _frame().assign(low=lambda f: np.exp(f.low / 10))
    synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=2, find_rules=False)
    rule = Positive("low", table_name="deals")
    synthesizer.add_constraints([rule])
    synthesizer.fit({"deals": frame})
    out = synthesizer.sample(scale=2.0)
    assert rule.fitted and (out["deals"].low > 0).all()
    synthesizer.validate_constraints(out)
    with pytest.raises(SynthesizerInputError, match=r"programmable constraint\(s\) \(Positive\)"):
        synthesizer.save(tmp_path / "model.pkl")


@pytest.fixture(scope="module")
def northwind():
    url = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(url)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=11)
    synthesizer.add_constraints([Inequality("birth_date", "hire_date", strict_boundaries=True,
                                            table_name="employees")])
    synthesizer.fit(data)
    return synthesizer, data


def test_northwind_rules_are_found_and_hold_whole_and_in_chunks(northwind):
    synthesizer, data = northwind
    found = {(c.table_name, c.low_column_name, c.high_column_name)
             for c in synthesizer.get_constraints() if c.found}
    assert {("orders", "order_date", "shipped_date"),
            ("orders", "order_date", "required_date")} <= found
    # 9 employees are below the 30 rows a found rule needs: the rule above is declared.
    assert not any(t == "employees" for t, _, _ in found)
    for scale in (1.0, 3.0):
        out = synthesizer.sample(scale=scale)
        synthesizer.validate_constraints(out)
        orders = out["orders"]
        assert len(orders) == round(len(data["orders"]) * scale)
        assert orders.shipped_date.isna().any()  # NULLs where the source has them
        chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=300))
        assert len(chunks) > 1
        synthesizer.validate_constraints(
            {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]})


def test_reflect_proposes_the_rules_of_its_sample_and_the_fit_keeps_those_every_row_holds(
        tmp_path):
    source = f"sqlite:///{tmp_path / 'src.sqlite'}"
    engine = sa.create_engine(source)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE trips (trip_id INTEGER PRIMARY KEY, "
                             "start_at TIMESTAMP, end_at TIMESTAMP, km REAL, fuel REAL)")
        # end_at > start_at in every row; fuel > km in the first 1,000 rows only (the rows
        # reflect samples from SQLite), so it is proposed and then not kept by the fit.
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500) "
            "INSERT INTO trips SELECT i, datetime('2024-01-01', '+' || i || ' hours'), "
            "datetime('2024-01-01', '+' || (i + 1 + i % 7) || ' hours'), 10 + i % 50, "
            "CASE WHEN i <= 1000 THEN 11 + i % 50 + i % 3 ELSE 5 END FROM n")
    engine.dispose()
    metadata = reflect(source)
    assert sorted(f"{r.table_name}: {r.describe()}" for r in metadata.proposed_rules) == \
        ["trips: end_at > start_at", "trips: fuel > km"]
    result = CliRunner().invoke(cli, ["reflect", source])
    assert result.exit_code == 0, result.output
    assert "trips: fuel > km (proposed: found in a sample of the rows" in result.output
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit(read_tables(source, metadata))
    assert sorted(f"{c.table_name}: {c.describe()}" for c in synthesizer.get_constraints()
                  if c.found) == \
        ["trips: end_at > start_at"]


def test_chinook_rules_hold_and_can_be_switched_off():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=4)
    synthesizer.fit(data)
    found = [c for c in synthesizer.get_constraints() if c.found]
    assert all(c.is_valid(data[c.table_name]).all() for c in found)
    synthesizer.validate_constraints(data)
    assert {"Bytes > Milliseconds", "Invoice.Total = sum(InvoiceLine.UnitPrice * "
            "InvoiceLine.Quantity)"} <= {c.describe() for c in found}
    for scale in (1.0, 3.0):
        out = synthesizer.sample(scale=scale)
        synthesizer.validate_constraints(out)
        # the high column stays within its real range (enforce_min_max_values), not clipped
        bytes_ = out["Track"].Bytes
        assert data["Track"].Bytes.min() <= bytes_.min() and bytes_.max() <= data["Track"].Bytes.max()
        assert (bytes_ == data["Track"].Bytes.max()).sum() <= 3
        chunks = list(synthesizer.sample_chunks(scale=scale, chunk_rows=1000))
        assert len(chunks) > 2
        synthesizer.validate_constraints(
            {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]})
    off = HMASynthesizer(metadata, verbose=False, seed=4, find_rules=False)
    off.fit(data)
    assert off.get_constraints() == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_birth_date_comes_before_the_other_dates_of_a_small_table_and_is_not_real(seed):
    # Chinook's 8 employees are below the 30 rows other found rules need; a birth date comes
    # before a hire date by what it means. Faker's birth date is moved to the hire date minus
    # an age drawn from the real ages at hire, so it is plausible and not a real one.
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=seed)
    synthesizer.fit(data)
    assert "Employee: HireDate > BirthDate" in {f"{c.table_name}: {c.describe()}"
                                                for c in synthesizer.get_constraints() if c.found}
    real = data["Employee"]
    real_age = pd.to_datetime(real.HireDate) - pd.to_datetime(real.BirthDate)
    for scale in (1.0, 3.0):
        out = synthesizer.sample(scale=scale)["Employee"]
        age = pd.to_datetime(out.HireDate) - pd.to_datetime(out.BirthDate)
        assert (age >= real_age.min()).all() and (age <= real_age.max()).all()
        # Dates at midnight, as the real ones (every birth date had a time of day).
        assert (pd.to_datetime(out.BirthDate) == pd.to_datetime(out.BirthDate).dt.normalize()).all()
        # A small table's rows are replayed, hire dates included: the modeled gap would give
        # back the real birth date of the hire date's employee, the quantile draw does not.
        pairs = {(h.date(), b.date()) for h, b in zip(pd.to_datetime(real.HireDate),
                                                      pd.to_datetime(real.BirthDate),
                                                      strict=True)}
        assert not pairs & {(h.date(), b.date()) for h, b in zip(
            pd.to_datetime(out.HireDate), pd.to_datetime(out.BirthDate), strict=True)}


def test_kept_tables_are_copied_and_rules_are_not_applied():
    url = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(url)
    for table in ("orders", "customers", "employees", "shippers"):
        metadata.tables[table]["policy"] = "keep"
    data = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit(data)
    assert not any(c.table_name == "orders" for c in synthesizer.get_constraints())
    out = synthesizer.sample()
    pd.testing.assert_series_equal(out["orders"].order_date.astype(str),
                                   data["orders"].order_date.astype(str), check_names=False)


def test_sdv_style_script_runs():
    # Objects made by SDV's own classes; run where sdv is installed, for example:
    #   python -m venv --system-site-packages /tmp/sdvenv
    #   /tmp/sdvenv/bin/pip install --no-deps sdv graphviz platformdirs
    #   /tmp/sdvenv/bin/python -m pytest tests/test_constraints.py -k sdv
    sdv = pytest.importorskip("sdv.cag")
    frame = _frame()
    synthesizer = HMASynthesizer(_metadata(), verbose=False, seed=3, find_rules=False)
    synthesizer.add_constraints([
        sdv.Inequality(low_column_name="start", high_column_name="end", table_name="deals"),
        sdv.FixedCombinations(column_names=["city", "country"], table_name="deals"),
        sdv.OneHotEncoding(column_names=["card", "cash", "transfer"], table_name="deals"),
        sdv.FixedIncrements(column_name="salary", increment_value=500, table_name="deals"),
        sdv.Range(low_column_name="low", middle_column_name="middle", high_column_name="high",
                  table_name="deals"),
    ])

    class Whole(sdv.SingleTableProgrammableConstraint):  # user code on SDV's own base class
        def __init__(self):
            self.table_name = "deals"

        def fit(self, data, metadata):
            pass

        def get_updated_metadata(self, metadata):
            return metadata

        def transform(self, data):
            return data

        def reverse_transform(self, data):
            return data.assign(low=data.low.round())

        def is_valid(self, data):
            return data.low == data.low.round()

    synthesizer.add_constraints([Whole()])
    assert [type(c).__name__ for c in synthesizer.get_constraints()] == [
        "Inequality", "FixedCombinations", "OneHotEncoding", "FixedIncrements", "Range", "Whole"]
    synthesizer.fit({"deals": frame})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synthesizer.validate_constraints(synthesizer.sample(scale=2.0))


def test_a_check_comparing_two_columns_becomes_a_rule(tmp_path):
    path = tmp_path / "shop.sqlite"
    engine = sa.create_engine(f"sqlite:///{path}")
    rng = np.random.default_rng(0)
    ordered = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, 150), unit="D")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, ordered DATE NOT NULL, shipped DATE, "
            "amount REAL CHECK (amount > 0), CHECK (shipped IS NULL OR shipped >= ordered))")
        rows = pd.DataFrame({
            "id": range(150), "ordered": ordered.strftime("%Y-%m-%d"),
            "shipped": (ordered + pd.to_timedelta(rng.integers(0, 9, 150), unit="D")
                        ).strftime("%Y-%m-%d"),
            "amount": rng.gamma(2, 20, 150).round(2)})
        rows.to_sql("orders", conn, if_exists="append", index=False)
    metadata = reflect(f"sqlite:///{path}")
    data = read_tables(f"sqlite:///{path}", metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=8, find_rules=False)
    synthesizer.fit(data)
    positive, rule = sorted(synthesizer.get_constraints(),  # find_rules=False: the CHECKs only
                            key=lambda c: isinstance(c, Inequality))
    assert (rule.origin, rule.low_column_name, rule.high_column_name) == \
        ("check", "ordered", "shipped")
    assert (positive.origin, positive.describe()) == ("check", "amount > 0")
    out = synthesizer.sample(scale=3.0)
    synthesizer.validate_constraints(out)
    assert len(out["orders"]) == 450


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_northwind_orders_with_a_check_clone_into_servers(request, server, tmp_path):
    # Northwind's orders with CHECK (shipped_date >= order_date) added: without the rule,
    # about half of the synthetic orders were shipped before they were ordered and the target
    # refused the load ("violates check constraint").
    databases = request.getfixturevalue(
        "postgres_databases" if server == "postgres" else "mysql_databases")
    source, target = databases.new("checked_src"), databases.new("checked_dst")
    north = f"sqlite:///{NORTHWIND_SQLITE}"
    frame = read_tables(north, reflect(north, include=["orders"], drop_cut_keys=True))["orders"]
    frame = frame.drop(columns=["customer_id", "employee_id", "ship_via"])
    with sa.create_engine(source).begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, order_date DATE NOT NULL, "
            "required_date DATE, shipped_date DATE, freight NUMERIC(10, 2), "
            "ship_country VARCHAR(15), CHECK (shipped_date >= order_date))")
        frame[["order_id", "order_date", "required_date", "shipped_date", "freight",
               "ship_country"]].to_sql("orders", conn, if_exists="append", index=False)
    clone(source, target, seed=4, scale=2.0)
    out = read_tables(target, reflect(target))["orders"]
    assert len(out) == 2 * len(frame)
    assert Inequality("order_date", "shipped_date", table_name="orders").is_valid(out).all()


def test_the_report_counts_violations_per_rule(northwind):
    synthesizer, data = northwind
    metadata = synthesizer.get_metadata()
    off = HMASynthesizer(metadata, verbose=False, seed=11, find_rules=False)
    off.fit(data)
    for model, broken in ((synthesizer, False), (off, True)):
        report = evaluate(data, model.sample(), metadata,
                          constraints=synthesizer.get_constraints())
        rules = {f["check"]: f for f in report.validity if f["check"].startswith("rule ")}
        assert {"rule shipped_date > order_date (found in the data)",
                "rule hire_date > birth_date (declared)"} <= set(rules)
        assert all(f["real_violations"] == 0 for f in rules.values())
        shipped = rules["rule shipped_date > order_date (found in the data)"]
        assert (shipped["violations"] > 100) if broken else (shipped["violations"] == 0)


class InvoiceTotal(ProgrammableConstraint):
    """Chinook's Invoice.Total is the sum of its lines' UnitPrice * Quantity (multi-table)."""

    @staticmethod
    def _sums(data):
        lines = data["InvoiceLine"]
        amount = lines.UnitPrice.astype(float) * lines.Quantity.astype(float)
        sums = amount.groupby(lines.InvoiceId).sum()
        return data["Invoice"].InvoiceId.map(sums).fillna(0.0).round(2)

    def reverse_transform(self, data):
        totals = [decimal.Decimal(f"{v:.2f}") for v in self._sums(data)]
        return {**data, "Invoice": data["Invoice"].assign(Total=totals)}

    def is_valid(self, data):
        totals = data["Invoice"].Total.astype(float).round(2)
        return {"Invoice": (totals - self._sums(data)).abs() < 0.005}


def test_a_multi_table_programmable_constraint_sees_whole_families():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    data = read_tables(url, metadata)
    assert InvoiceTotal().is_valid(data)["Invoice"].all()
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=6)
    synthesizer.add_constraints([InvoiceTotal()])
    synthesizer.fit(data)
    synthesizer.validate_constraints(synthesizer.sample(scale=2.0))
    # Above chunk_rows, invoices are sampled in every chunk with all their lines (at or below
    # it they would be sampled once, in the first chunk, and their lines spread over chunks).
    chunks = list(synthesizer.sample_chunks(scale=2.0, chunk_rows=500))
    assert len(chunks) > 2 and all(len(c["Invoice"]) for c in chunks)
    for chunk in chunks:  # each chunk holds its invoices with all their lines
        synthesizer.validate_constraints(chunk)
    synthesizer.validate_constraints(
        {t: pd.concat([c[t] for c in chunks], ignore_index=True) for t in chunks[0]})
