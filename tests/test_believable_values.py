"""Values a person believes (issue 17): closed vocabularies keep their values, text keeps its
shape, personal data agrees within a row."""

import numpy as np
import pandas as pd
import pytest
from conftest import CHINOOK_SQLITE, NORTHWIND_SQLITE

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
    url = f"sqlite:///{NORTHWIND_SQLITE}"
    metadata = reflect(url)
    real = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=0)
    synthesizer.fit(real)
    return metadata, real, synthesizer.sample()


@pytest.fixture(scope="module")
def chinook():
    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url)
    real = read_tables(url, metadata)
    synthesizer = HMASynthesizer(metadata, verbose=False, seed=0)
    synthesizer.fit(real)
    return metadata, real, synthesizer.sample()


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


def test_reflection_marks_a_closed_vocabulary_and_leaves_free_text(northwind, chinook):
    metadata = northwind[0]
    assert "generator" not in metadata.tables["employees"]["columns"]["title_of_courtesy"]
    assert metadata.tables["products"]["columns"]["product_name"].get("generator") == "text"
    assert "generator" not in chinook[0].tables["Employee"]["columns"]["Title"]


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


def test_northwind_text_keeps_digits_and_personal_values_fit_the_width(northwind):
    metadata, real, synthetic = northwind
    assert synthetic["employees"]["extension"].dropna().str.fullmatch(r"\d+").all()
    for table in ("customers", "suppliers", "employees"):
        made = synthetic[table]["country"].dropna()
        width = metadata.tables[table]["columns"]["country"]["max_length"]
        assert made.str.len().max() <= width
        if metadata.tables[table]["columns"]["country"].get("pii"):  # the en_US locale's
            assert (made == "United States").all(), table


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
    both = customers[["State", "PostalCode"]].dropna()
    assert len(both) > 10 and _postcode_agrees(both["State"], both["PostalCode"]).all()
    local = customers["Email"].str.partition("@")[0]
    names = (customers["FirstName"] + "." + customers["LastName"]).str.lower()
    assert (local == names.str.replace(r"[^a-z0-9.]", "", regex=True)).mean() > 0.9
    assert not customers["Email"].isin(chinook[1]["Customer"]["Email"]).any()
    rows = northwind[2]["customers"][["region", "postal_code"]].dropna()
    assert len(rows) > 10 and _postcode_agrees(rows["region"], rows["postal_code"]).all()


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
