"""Values a person believes (issue 17): closed vocabularies keep their values, text keeps its
shape, personal data agrees within a row."""

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE, fit_and_sample

from hma_db import HMASynthesizer, Metadata, TableTransformer, read_tables, reflect


def _single_table(columns: dict) -> Metadata:
    return Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": columns}}})


def _sample(tt: TableTransformer, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = pd.DataFrame({c: rng.random(n) for c in tt.modeled_columns},
                           index=range(n))
    return tt.reverse_transform(numeric, np.random.default_rng(seed + 1))


@pytest.fixture(scope="module")
def northwind():
    return fit_and_sample(NORTHWIND_SQLITE, seed=0)


@pytest.fixture(scope="module")
def chinook():
    return fit_and_sample(CHINOOK_SQLITE, seed=0)


# ------------------------------------------------------------------------ closed vocabularies
def test_a_small_vocabulary_keeps_its_repeated_values_and_folds_a_single_row():
    answers = ["Yes"] * 4 + ["No"] * 3 + ["Maybe"] * 2 + ["Only Alice"]
    frame = pd.DataFrame({"id": range(10), "answer": answers})
    tt = TableTransformer("t", _single_table({"id": {"sdtype": "id"},
                                              "answer": {"sdtype": "unknown"}}))
    tt.fit(frame)
    out = _sample(tt, 600, 0)["answer"]
    assert set(out) == {"Yes", "No", "Maybe"}  # all below min_category_count (5), none a word
    assert out.value_counts(normalize=True)["Yes"] > out.value_counts(normalize=True)["Maybe"]


def test_free_text_and_a_given_text_generator_still_make_words():
    frame = pd.DataFrame({"id": range(10), "note": ["a b"] * 5 + ["c d"] * 5,
                          "title": [f"Title {i}" for i in range(10)]})
    tt = TableTransformer("t", _single_table({"id": {"sdtype": "id"},
                                              "note": {"sdtype": "unknown", "generator": "text"},
                                              "title": {"sdtype": "unknown"}}))
    tt.fit(frame)
    out = _sample(tt, 200, 0)
    assert not out["note"].isin(frame["note"]).any()
    assert not out["title"].isin(frame["title"]).any()
    # No word a reader takes for a missing value ('Bring Theory None' in Chinook's names).
    from hma_db.transform.generators import text

    words = {w.lower() for made in text(np.full(3_000, 60), np.random.default_rng(1))
             for w in made.split()}
    assert len(words) > 500 and not words & {"none", "null", "nan"}


def test_reflection_marks_a_closed_vocabulary_and_leaves_free_text(northwind, chinook):
    metadata = northwind[0]
    assert "generator" not in metadata.tables["employees"]["columns"]["title_of_courtesy"]
    assert metadata.tables["products"]["columns"]["product_name"].get("generator") == "text"
    assert "generator" not in chinook[0].tables["Employee"]["columns"]["Title"]


def test_a_long_list_whose_values_come_back_often_is_drawn_not_made(tmp_path):
    """TPC-H's part types: 150 values over 10,000 parts (67 each) came out as words ('CUSTOMER
    LEFT HEAVY'), and each order got a clerk of its own; free text of the same length, whose
    values seldom repeat, is still made."""
    import sqlite3

    from hma_db import HMASynthesizer, read_tables, reflect
    from hma_db.transform.encoders import is_closed_vocabulary

    rng = np.random.default_rng(2)
    kinds = [f"{a} {b} {c}" for a in ("SMALL", "LARGE", "ECONOMY", "PROMO", "STANDARD", "MEDIUM")
             for b in ("PLATED", "BRUSHED", "ANODIZED", "POLISHED", "BURNISHED")
             for c in ("TIN", "NICKEL", "BRASS", "STEEL", "COPPER")]
    n = 6_000
    path = tmp_path / "parts.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE part (id INTEGER PRIMARY KEY, p_type VARCHAR(25) NOT NULL, "
                     "p_note VARCHAR(40) NOT NULL, size INTEGER NOT NULL)")
        notes = [" ".join(rng.choice(["blue", "quick", "fox", "lazy", "deposits", "furious",
                                      "sleep", "above", "final", "bold"], 4)) for _ in range(n)]
        conn.executemany("INSERT INTO part VALUES (?, ?, ?, ?)",
                         [(i, kinds[k], notes[i], int(s)) for i, (k, s) in enumerate(
                             zip(rng.integers(0, len(kinds), n), rng.integers(1, 50, n),
                                 strict=True))])
    url = f"sqlite:///{path}"
    metadata = reflect(url)
    columns = metadata.tables["part"]["columns"]
    assert "generator" not in columns["p_type"] and columns["p_note"].get("generator") == "text"
    frame = read_tables(url, metadata)["part"]
    assert is_closed_vocabulary(frame["p_type"]) and not is_closed_vocabulary(frame["p_note"])
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1)
    synthesizer.fit({"part": frame})
    out = synthesizer.sample()["part"]
    assert out["p_type"].isin(kinds).all() and out["p_type"].nunique() > 100
    assert not out["p_note"].isin(frame["p_note"]).any()


def test_titles_of_chinook_and_northwind_exist_in_the_source(northwind, chinook):
    _, real, synthetic = chinook
    titles = synthetic["Employee"]["Title"].dropna()
    assert len(titles) and titles.isin(real["Employee"]["Title"]).all()
    _, real, synthetic = northwind
    for column in ("title_of_courtesy", "title"):
        made = synthetic["employees"][column].dropna()
        counts = real["employees"][column].value_counts()
        assert len(made) and made.isin(counts.index[counts >= 2]).all(), column


def test_no_categorical_value_absent_from_the_source(northwind, chinook):
    for metadata, real, synthetic in (northwind, chinook):
        for table, spec in metadata.tables.items():
            for column, meta in spec["columns"].items():
                if meta.get("sdtype") == "categorical":
                    made = synthetic[table][column].dropna()
                    assert made.isin(real[table][column]).all(), (table, column)


# ------------------------------------------------------------------------------- text shape
def test_codes_keep_their_character_classes_and_words_their_case():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": range(300),
                          "ext": rng.integers(100, 10_000, 300).astype(str),
                          "ref": [f"AB-{i:04d}" for i in range(300)],
                          "label": [f"Quiet river number {i}" for i in range(300)]})
    columns = {"id": {"sdtype": "id"},
               "ext": {"sdtype": "unknown", "generator": "text", "max_length": 4},
               "ref": {"sdtype": "unknown", "generator": "text", "max_length": 7},
               "label": {"sdtype": "unknown", "generator": "text", "max_length": 40}}
    tt = TableTransformer("t", _single_table(columns))
    tt.fit(frame)
    out = _sample(tt, 500, 3)
    assert out["ext"].str.fullmatch(r"\d{3,4}").all()
    assert out["ref"].str.fullmatch(r"[A-Z]{2}-\d{4}").all()
    assert out["ext"].isin(frame["ext"]).mean() < 0.2  # drawn, not copied (300 of 9,900)
    assert out["label"].str.match(r"^[A-Z]").all() and out["label"].str.len().max() <= 40


def test_northwind_text_keeps_digits_and_countries_keep_their_values(northwind):
    metadata, real, synthetic = northwind
    assert synthetic["employees"]["extension"].dropna().str.fullmatch(r"\d+").all()
    for table in ("customers", "suppliers", "employees"):
        made = synthetic[table]["country"].dropna()
        assert metadata.tables[table]["columns"]["country"]["sdtype"] == "categorical"
        assert made.isin(real[table]["country"]).all() and made.nunique() > 1 or \
            table == "employees", table  # a closed vocabulary, not 'United States' for all


# ------------------------------------------------------------------- personal data of a row
def _postcode_agrees(states: pd.Series, postcodes: pd.Series) -> pd.Series:
    from faker import Faker

    address = next(p for p in Faker("en_US").providers if "address" in type(p).__module__)
    abbr = dict(zip(address.states, [a for a in address.states_abbr if a != "DC"], strict=True))
    ranges = states.map(lambda s: address.states_postcode.get(abbr.get(s, s), (-1, -1)))
    codes = postcodes.astype(str).str.slice(0, 5).astype(int)
    return (codes >= ranges.str[0]) & (codes <= ranges.str[1])


def test_state_and_postcode_agree_and_emails_follow_names(chinook, northwind):
    customers = chinook[2]["Customer"]
    both = customers.loc[customers["Country"] == "USA", ["State", "PostalCode"]].dropna()
    assert len(both) >= 3 and _postcode_agrees(both["State"], both["PostalCode"]).all()
    local = customers["Email"].str.partition("@")[0]
    names = (customers["FirstName"] + "." + customers["LastName"]).str.lower()
    assert (local == names.str.replace(r"[^a-z0-9.]", "", regex=True)).mean() > 0.9
    assert not customers["Email"].isin(chinook[1]["Customer"]["Email"]).any()
    us = northwind[2]["orders"][northwind[2]["orders"]["ship_country"] == "USA"]
    rows = us[["ship_region", "ship_postal_code"]].dropna()
    assert len(rows) > 10 and _postcode_agrees(rows["ship_region"],
                                               rows["ship_postal_code"]).all()


def test_agreement_leaves_a_model_of_the_first_release_alone():
    from hma_db.transform import dependencies

    values = {"s": np.array(["x", None], dtype=object), "p": np.array(["1", "2"], dtype=object)}
    specs = {"s": {"role": "personal", "provider": "state"},
             "p": {"role": "personal", "provider": "postcode"}}
    dependencies.agree(values, specs, np.zeros(2, dtype=int), ("en_US",),
                       np.random.default_rng(0))
    assert values["s"].tolist() == ["x", None] and values["p"].tolist() == ["1", "2"]
    for spec in specs.values():
        spec["in_row"] = True
    dependencies.agree(values, specs, np.zeros(2, dtype=int), ("en_US",),
                       np.random.default_rng(0))
    assert values["s"][1] is None and values["s"][0] != "x" and len(values["p"][0]) == 5


# ------------------------------------------------------------------------ personal by value
def test_names_take_faker_titles_only_where_the_source_has_titles(northwind):
    # Northwind's contact names have no titles: neither do the synthetic ones.
    names = northwind[2]["customers"]["contact_name"].dropna()
    assert len(names) and not names.str.match(r"^(Mr|Mrs|Ms|Miss|Dr|Mx)\.? ").any()
    assert not names.str.contains(r" (PhD|MD|DDS|DVM|Jr\.|Sr\.|II|III|IV|V)$").any()
    # A source that writes titles keeps Faker's ("Dr. Ann Lee", "Tom Ray Jr.").
    titled = [f"{t} Ann Lee{i}" for i, t in enumerate(["Dr.", "Mr.", "Mrs."] * 20)] + \
        [f"Ann Lee{i}" for i in range(140)]
    frame = pd.DataFrame({"id": range(200), "who": titled})
    for source, plain in ((frame, False), (frame.assign(who=frame.who.str.replace(
            r"^\S+\. ", "", regex=True)), True)):
        tt = TableTransformer("t", _single_table({"id": {"sdtype": "id"},
                                                  "who": {"sdtype": "name", "pii": True}}))
        tt.fit(source)
        out = _sample(tt, 2000, 0)["who"]
        has = out.str.match(r"^(Mr|Mrs|Ms|Miss|Dr|Mx)\. ") | \
            out.str.contains(r" (PhD|MD|DDS|DVM|Jr\.|II|III|IV|V)$")
        assert has.any() != plain


def test_card_numbers_and_ibans_are_found_from_their_values():
    from hma_db.schema.pii import guess_from_values

    assert guess_from_values(["4111 1111 1111 1111", "5500-0000-0000-0004"]) == \
        "credit_card_number"
    assert guess_from_values(["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]) == "iban"
    assert guess_from_values(["+1 (555) 123-4567", "555 123 4567"]) == "phone_number"


def test_the_report_flags_real_names_in_a_column_not_named_like_personal_data():
    from hma_db import evaluate

    metadata = Metadata.from_dict({"tables": {
        "people": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "full_name": {"sdtype": "name", "pii": True}}},
        "notes": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "label": {"sdtype": "categorical"}}}}})
    names = [f"Person Number{i}" for i in range(40)]
    real = {"people": pd.DataFrame({"id": range(40), "full_name": names}),
            "notes": pd.DataFrame({"id": range(200), "label": names[:10] * 20})}
    copied = {"people": pd.DataFrame({"id": range(40), "full_name": [f"Fake {i}" for i in
                                                                       range(40)]}),
              "notes": pd.DataFrame({"id": range(200), "label": names[:10] * 20})}
    clean = {**copied, "notes": pd.DataFrame({"id": range(200), "label": ["alpha"] * 200})}
    found = evaluate(real, copied, metadata).privacy
    assert [f["flagged"] for f in found["personal_values"]] == [True] and not found["passed"]
    assert not any(f["flagged"] for f in evaluate(real, clean, metadata).privacy[
        "personal_values"])


# ----------------------------------------------------------------- the row's country's locale
def test_a_country_value_names_its_faker_locale():
    from hma_db.transform.dependencies import locale_of_country

    assert [locale_of_country(v) for v in ("Germany", "USA", "UK", "Brazil", "DEU", "Ireland",
                                           "Atlantis", None)] == \
        ["de_DE", "en_US", "en_GB", "pt_BR", "de_DE", "en_IE", None, None]
    assert locale_of_country("Canada") == "en_CA" and \
        locale_of_country("Canada", ("fr_CA",)) == "fr_CA"  # the user's locale first
    # fr_BE's addresses and phones are en_US's ("549 Pauwels Estates Suite 311"): nl_BE's are
    # Belgian.
    assert locale_of_country("Belgium") == "nl_BE"


def test_a_country_without_states_gets_no_us_state():
    from faker import Faker

    from hma_db.transform.personal import lacks_region

    # fr_BE inherits en_US's states; nl_BE and en_IE have none or their own.
    assert lacks_region("fr_BE", "state") and not lacks_region("de_AT", "state")
    assert not lacks_region("en_US", "state") and not lacks_region("fr_BE", "city")
    us_states = set(Faker("en_US").provider("faker.providers.address").states)
    metadata = Metadata.from_dict({"tables": {"t": {"primary_key": "id", "columns": {
        "id": {"sdtype": "id"}, "country": {"sdtype": "categorical"},
        "state": {"sdtype": "state", "pii": True}}}}})
    countries = ["Belgium", "USA", "Austria"] * 40
    frame = pd.DataFrame({"id": range(120), "country": countries,
                          "state": ["x", "Ohio", "Tirol"] * 39 + [None] * 3})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=1, locales=["fr_BE"])
    synthesizer.fit({"t": frame})
    out = synthesizer.sample(scale=3)["t"]
    in_us = out["state"].isin(us_states)
    assert in_us[out.country == "USA"].mean() > 0.9
    assert not in_us[out.country != "USA"].any()


def test_personal_data_follows_the_rows_country(chinook, northwind):
    customers = chinook[2]["Customer"]
    brazil = customers.loc[customers["Country"] == "Brazil", "Phone"].dropna()
    usa = customers.loc[customers["Country"] == "USA", "Phone"].dropna()
    assert len(brazil) and len(usa)
    assert brazil.str.contains(r"\+55|^\(?0?\d{2}\)? ?\d{4}", regex=True).mean() > 0.5
    assert not usa.str.contains(r"\+55", regex=False).any()
    suppliers = northwind[2]["suppliers"]
    assert suppliers["country"].nunique() > 2  # the source's countries, each with its address


# ------------------------------------------------------------- copied from the parent's row
def _copies_metadata() -> Metadata:
    return Metadata.from_dict({"tables": {
        "customer": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "address": {"sdtype": "street_address", "pii": True},
            "flag": {"sdtype": "categorical"}}},
        "invoice": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "customer_id": {"sdtype": "id"},
            "billing": {"sdtype": "street_address", "pii": True},
            "flag": {"sdtype": "categorical"}, "amount": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "customer", "parent_primary_key": "id",
                           "child_table_name": "invoice", "child_foreign_key": "customer_id"}]})


def test_a_child_column_holding_its_parents_value_holds_it_in_the_same_share():
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"id": range(60), "address": [f"{i} Main Street" for i in range(60)],
                              "flag": np.where(rng.random(60) < 0.9, "Y", "N")})
    parent = rng.integers(60, size=600)
    billing = customers["address"].to_numpy()[parent].copy()
    moved = rng.random(600) < 0.2  # 80% bill to the customer's address
    billing[moved] = [f"{i} Other Road" for i in range(int(moved.sum()))]
    invoices = pd.DataFrame({"id": range(600), "customer_id": parent, "billing": billing,
                             "flag": np.where(rng.random(600) < 0.9, "Y", "N"),
                             "amount": rng.random(600)})
    synthesizer = HMASynthesizer(_copies_metadata(), verbose=False, seed=0)
    synthesizer.fit({"customer": customers, "invoice": invoices})
    copies = synthesizer._state.transformers["invoice"].parent_copies
    assert [(c["column"], c["parent_column"]) for c in copies] == [("billing", "address")]
    assert copies[0]["share"] == pytest.approx(0.8, abs=0.04)  # flags agree by chance: no copy
    out = synthesizer.sample()
    linked = out["customer"].set_index("id")["address"].reindex(out["invoice"]["customer_id"])
    share = (linked.to_numpy() == out["invoice"]["billing"].to_numpy()).mean()
    assert abs(share - copies[0]["share"]) < 0.05
    assert not out["invoice"]["billing"].isin(invoices["billing"]).any()  # faked, not real


def test_a_status_copied_from_its_parent_takes_no_value_outside_its_own():
    """TPC-H's shape: a line's status (F or O) is its order's (F, O or P: partly shipped) in
    most lines; the lines of a P order keep a status of their own vocabulary."""
    rng = np.random.default_rng(1)
    orders = pd.DataFrame({"id": range(400), "status": rng.choice(["F", "O", "P"], 400,
                                                                   p=[0.48, 0.48, 0.04])})
    parent = rng.integers(400, size=2_000)
    status = orders["status"].to_numpy()[parent].copy()
    mixed = status == "P"
    status[mixed] = rng.choice(["F", "O"], int(mixed.sum()))
    lines = pd.DataFrame({"id": range(2_000), "order_id": parent, "status": status,
                          "amount": rng.gamma(2, 50, 2_000)})
    metadata = Metadata.from_dict({"tables": {
        "orders": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "status": {"sdtype": "categorical"}}},
        "lines": {"primary_key": "id", "columns": {
            "id": {"sdtype": "id"}, "order_id": {"sdtype": "id"},
            "status": {"sdtype": "categorical"}, "amount": {"sdtype": "numerical"}}}},
        "relationships": [{"parent_table_name": "orders", "parent_primary_key": "id",
                           "child_table_name": "lines", "child_foreign_key": "order_id"}]})
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=2)
    synthesizer.fit({"orders": orders, "lines": lines})
    copies = synthesizer._state.transformers["lines"].parent_copies
    assert [(c["column"], c["values"]) for c in copies] == [("status", ["F", "O"])]
    out = synthesizer.sample(scale=2)
    assert set(out["lines"]["status"]) == {"F", "O"}
    assert (out["orders"]["status"] == "P").any()
    linked = out["orders"].set_index("id")["status"].reindex(out["lines"]["order_id"]).to_numpy()
    kept = linked != "P"  # the copy still holds where the order's status is a line's
    assert (linked[kept] == out["lines"]["status"].to_numpy()[kept]).mean() > 0.9


# ------------------------------------------------------------------------------ the done-when
def _copy_share(child, parent, fk, pk, column, parent_column):
    position = pd.Index(parent[pk]).get_indexer(child[fk])
    linked = position >= 0
    a = pd.Series(child[column].to_numpy(dtype=object)[linked])
    b = pd.Series(parent[parent_column].to_numpy(dtype=object)[position[linked]])
    return float(((a == b) | (a.isna() & b.isna())).mean())


@pytest.fixture(scope="module", params=["chinook", "northwind"])
def cloned(request, tmp_path_factory):
    from hma_db import clone

    source = f"sqlite:///{CHINOOK_SQLITE if request.param == 'chinook' else NORTHWIND_SQLITE}"
    target = f"sqlite:///{tmp_path_factory.mktemp('clone') / 'out.sqlite'}"
    clone(source, target, seed=1)
    metadata = reflect(source)
    return request.param, metadata, read_tables(source, metadata), read_tables(target, metadata)


_COPIES = {"chinook": ("Invoice", "Customer", "CustomerId", [
    ("BillingAddress", "Address"), ("BillingCity", "City"), ("BillingState", "State"),
    ("BillingCountry", "Country"), ("BillingPostalCode", "PostalCode")]),
    "northwind": ("orders", "customers", "customer_id", [
        ("ship_name", "company_name"), ("ship_address", "address"), ("ship_city", "city"),
        ("ship_region", "region"), ("ship_postal_code", "postal_code"),
        ("ship_country", "country")])}
_US_ADDRESSES = {"chinook": [("Customer", "State", "PostalCode", "Country"),
                             ("Invoice", "BillingState", "BillingPostalCode", "BillingCountry")],
                 "northwind": [("customers", "region", "postal_code", "country"),
                               ("orders", "ship_region", "ship_postal_code", "ship_country"),
                               ("suppliers", "region", "postal_code", "country"),
                               ("employees", "region", "postal_code", "country")]}


def test_clones_hold_values_a_person_believes(cloned):
    name, metadata, real, synthetic = cloned
    for table, spec in metadata.tables.items():
        for column, meta in spec["columns"].items():
            made, seen = synthetic[table][column].dropna(), real[table][column].dropna()
            if meta.get("sdtype") == "categorical":  # no categorical value the source lacks
                assert made.isin(seen).all(), (table, column)
            if len(seen) and seen.map(lambda v: isinstance(v, str)).all() and len(made):
                if seen.str.fullmatch(r"\d+").all():  # digits stay digits
                    assert made.str.fullmatch(r"\d+").all(), (table, column)
                width = meta.get("max_length")
                if width:  # chosen to fit, not cut: no pile of distinct values at the width
                    assert made.str.len().max() <= width, (table, column)
                    made, seen = pd.Series(made.unique()), pd.Series(seen.unique())
                    lengths = made.str.len()
                    full = lengths == width  # a cut piles values there (>= 3 of them)
                    share = (seen.str.len() == width).mean()  # give or take two deviations
                    # Whole names that happen to fit are as many at the width as just below
                    # it (Northwind's regions: 3 of 15 letters, 2 of 14); a cut piles more.
                    below = max((lengths == width - 1).sum(), (lengths == width - 2).sum())
                    assert full.sum() < 3 or full.sum() <= max(2, below) + 1 or \
                        full.mean() <= share + 0.1 + 2 * np.sqrt(share * (1 - share) / len(made)), \
                        (table, column, sorted(made[full]))
    titles = [("Employee", "Title")] if name == "chinook" else [
        ("employees", "title"), ("employees", "title_of_courtesy")]
    for table, column in titles:
        made = synthetic[table][column].dropna()
        assert len(made) and made.isin(real[table][column]).all(), column
    child, parent, fk, pairs = _COPIES[name]
    for column, parent_column in pairs:
        source = _copy_share(real[child], real[parent], fk, fk, column, parent_column)
        made = _copy_share(synthetic[child], synthetic[parent], fk, fk, column, parent_column)
        assert abs(made - source) <= 0.05, (column, source, made)
    if name == "northwind":  # 69% of lines sell at the catalogue price (the oldest at 80%)
        line_prices = ("order_details", "products", "product_id", "product_id", "unit_price",
                       "unit_price")
        source = _copy_share(real["order_details"], real["products"], *line_prices[2:])
        made = _copy_share(synthetic["order_details"], synthetic["products"], *line_prices[2:])
        assert source > 0.65 and abs(made - source) <= 0.1, (source, made)  # 0.03 before
    checked = 0
    for table, state, postcode, country in _US_ADDRESSES[name]:
        rows = synthetic[table]
        rows = rows.loc[rows[country] == "USA", [state, postcode]].dropna()
        assert _postcode_agrees(rows[state], rows[postcode]).all(), table
        checked += len(rows)
    assert checked > 10


def test_courtesy_titles_agree_with_first_names(northwind, cloned):
    from faker import Faker

    person = next(p for p in Faker("en_US").providers if "person" in type(p).__module__)
    female, male = set(person.first_names_female), set(person.first_names_male)
    frames = [northwind[2]["employees"]] + ([cloned[3]["employees"]] if cloned[0] ==
                                            "northwind" else [])
    for employees in frames:
        women = employees.loc[employees["title_of_courtesy"].isin(["Ms.", "Mrs."]), "first_name"]
        men = employees.loc[employees["title_of_courtesy"] == "Mr.", "first_name"]
        assert len(women) and women.isin(female).all() and men.isin(male).all()


@pytest.mark.parametrize("cloned", ["northwind"], indirect=True)
def test_ship_name_is_found_personal_from_its_values_and_faked(cloned):
    _, metadata, real, synthetic = cloned
    assert metadata.tables["orders"]["columns"]["ship_name"]["sdtype"] == "company"
    assert not synthetic["orders"]["ship_name"].isin(real["customers"]["company_name"]).any()


def _planted_leak(path) -> str:
    """People with names, and notes whose 'label' (not named like personal data) holds them."""
    import sqlalchemy as sa

    first = ["Alma", "Boris", "Chiara", "Dmitri", "Elodie", "Farid", "Greta", "Hamish",
             "Ines", "Jonas", "Kirsi", "Lorenzo"]
    last = ["Vantongeren", "Quillfeather", "Osterhagen", "Marchetti", "Lindqvist",
            "Kowalczyk", "Hargreaves", "Bellweather", "Zubiaurre", "Rautavaara"]
    names = [f"{f} {s}" for f in first for s in last]  # 120 names
    rng = np.random.default_rng(4)
    engine = sa.create_engine(f"sqlite:///{path}")
    pd.DataFrame({"id": range(120), "full_name": names}).to_sql("people", engine, index=False)
    pd.DataFrame({"id": range(150), "label": rng.choice(names, 150),
                  "amount": rng.random(150)}).to_sql("notes", engine, index=False)
    engine.dispose()
    return f"sqlite:///{path}"


def test_a_planted_leak_is_faked_by_default_and_flagged_when_kept(tmp_path):
    from hma_db import clone, evaluate_databases

    source = _planted_leak(tmp_path / "leak.sqlite")
    metadata = reflect(source)
    assert metadata.tables["notes"]["columns"]["label"]["sdtype"] == "name"
    real = read_tables(source, metadata)
    target = f"sqlite:///{tmp_path / 'faked.sqlite'}"
    clone(source, target, seed=0)
    made = read_tables(target, metadata)["notes"]["label"]
    assert len(made) and not made.isin(real["people"]["full_name"]).any()
    assert not any(f["flagged"] for f in evaluate_databases(source, target).privacy[
        "personal_values"])
    kept = f"sqlite:///{tmp_path / 'kept.sqlite'}"
    clone(source, kept, seed=0, policies={"notes.label": "keep"})
    found = evaluate_databases(source, kept).privacy
    assert [(f["table"], f["column"]) for f in found["personal_values"] if f["flagged"]] == [
        ("notes", "label")] and not found["passed"]


def test_phone_numbers_have_an_extension_only_where_the_real_ones_do():
    """Faker's en_US numbers end in an extension a third of the time ('(909)915-7212x01883');
    US customers' numbers without one came out with one in 37-54% of the rows."""
    rng = np.random.default_rng(3)
    plain = [f"({a}) {b}-{c}" for a, b, c in zip(rng.integers(200, 999, 300),
                                                  rng.integers(200, 999, 300),
                                                  rng.integers(1000, 9999, 300), strict=True)]
    metadata = _single_table({"id": {"sdtype": "id"}, "phone": {"sdtype": "phone_number"}})
    for numbers, extended in ((plain, False), (plain[:-30] + [p + " x12" for p in plain[-30:]],
                                               True)):
        tt = TableTransformer("t", metadata)
        tt.fit(pd.DataFrame({"id": range(300), "phone": numbers}))
        made = _sample(tt, 600, 4)["phone"].astype(str)
        assert made.str.contains(r"\d{3}.*\d{4}").mean() > 0.9
        assert made.str.contains(r"x\d+$").any() == extended
