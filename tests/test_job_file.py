"""Job files: every documented key parsed, and bad input named by key and line."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from hma_db import ConfigError
from hma_db.jobs.file import load_job, parse_job
from hma_db.jobs.toml_lines import key_lines

FULL = """\
source = "${SRC_URL}"
target = "staging.sqlite"
include = ["Customer", "Invoice", "Employee"]
exclude = ["Playlist"]
locales = ["en_US", "fr_CA"]
scale = 0.5
seed = 7
if_exists = "replace"
report = "report.html"

[schema]
source = "public"
target = "staging"

[columns."Customer.Company"]
provider = "company"
[columns."Invoice.BillingCountry"]
categorical = true
[columns."Customer.Fax"]
sdtype = "categorical"

[tables.Invoice]
default_distribution = "truncnorm"
numerical_distributions = { Total = "gamma" }
enforce_min_max_values = false
enforce_rounding = true
locales = "fr_CA"

[model]
path = "models/chinook.pkl"
max_age = "1d12h"
trust_pickle = true
"""


def _job(text: str, env: dict | None = None, base: Path = Path("/jobs")):
    return parse_job(textwrap.dedent(text), path="job.toml", env=env or {}, base_dir=base)


def _error(text: str, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        _job(text, env)
    return str(info.value)


def test_every_documented_key_is_read(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text(FULL)
    job = load_job(path, env={"SRC_URL": "postgresql+psycopg://app:s3cret@db/shop"})
    assert job.source == "postgresql+psycopg://app:s3cret@db/shop"
    assert job.target == f"sqlite:///{tmp_path / 'staging.sqlite'}"
    assert (job.source_schema, job.target_schema) == ("public", "staging")
    assert job.include == ["Customer", "Invoice", "Employee"] and job.exclude == ["Playlist"]
    assert job.locales == ["en_US", "fr_CA"]
    assert (job.scale, job.seed, job.if_exists) == (0.5, 7, "replace")
    overrides = {o.key: (o.sdtype, o.provider, o.categorical, o.line) for o in job.columns}
    assert overrides == {"Customer.Company": (None, "company", False, 15),
                         "Invoice.BillingCountry": (None, None, True, 17),
                         "Customer.Fax": ("categorical", None, False, 19)}
    assert job.table_parameters == {"Invoice": {
        "default_distribution": "truncnorm", "numerical_distributions": {"Total": "gamma"},
        "enforce_min_max_values": False, "enforce_rounding": True, "locales": ["fr_CA"]}}
    assert job.model_path == tmp_path / "models" / "chinook.pkl"
    assert job.model_max_age == timedelta(days=1, hours=12) and job.model_trust_pickle
    assert job.report == tmp_path / "report.html"
    assert "s3cret" not in repr(job)


def test_defaults():
    job = _job('source = "sqlite:///a.sqlite"\ntarget = "sqlite:///b.sqlite"\n')
    assert (job.scale, job.seed, job.if_exists, job.locales) == (1.0, None, "fail", ["en_US"])
    assert job.include is job.exclude is job.model_path is job.model_max_age is None
    assert job.source == "sqlite:////jobs/a.sqlite"  # relative to the job file's directory


@pytest.mark.parametrize("url, expected", [
    ("sqlite:///data/x.sqlite", "sqlite:////jobs/data/x.sqlite"),
    ("sqlite:////abs/x.sqlite", "sqlite:////abs/x.sqlite"),
    ("sqlite://", "sqlite://"),
    ("x.sqlite", "sqlite:////jobs/x.sqlite"),
    ("postgresql+psycopg://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
])
def test_database_values(url, expected):
    assert _job(f'source = "{url}"\ntarget = "sqlite://"\n').source == expected


def test_environment_variables_expand_in_every_string():
    job = _job('source = "postgresql://${USER_}:${PASS}@h/db"\ntarget = "t.sqlite"\n'
               'if_exists = "${MODE}"\n', env={"USER_": "app", "PASS": "pw", "MODE": "truncate"})
    assert job.source == "postgresql://app:pw@h/db" and job.if_exists == "truncate"


def test_missing_environment_variable_names_variable_key_and_line():
    message = _error('source = "a.sqlite"\n\ntarget = "${STAGING_URL}"\n')
    assert message.startswith("job.toml, line 3: 'target'")
    assert "${STAGING_URL}" in message and "not set" in message


def test_unknown_key_with_suggestion():
    message = _error('source = "a.sqlite"\ntarget = "b.sqlite"\nsacle = 2\n')
    assert message.startswith("job.toml, line 3: unknown key 'sacle'")
    assert "did you mean 'scale'? Known keys: source, target," in message
    message = _error('source = "a"\ntarget = "b"\n\n[tabels.Invoice]\nseed = 1\n')
    assert message.startswith("job.toml, line 4: unknown key 'tabels'; did you mean 'tables'?")
    message = _error('source = "a"\ntarget = "b"\nmodle = 1\nfoo = 2\n')
    assert "'modle'; did you mean 'model'?" in message
    assert "unknown key 'foo'. Known keys" in _error('source = "a"\ntarget = "b"\nfoo = 2\n')


def test_unknown_key_in_a_table_section():
    message = _error('source = "a"\ntarget = "b"\n\n[tables.Invoice]\n'
                     'default_distributon = "beta"\n')
    assert "line 5: unknown key 'default_distributon' in [tables.Invoice]" in message
    assert "did you mean 'default_distribution'?" in message
    message = _error('source = "a"\ntarget = "b"\n[columns."Track.Name"]\nprovder = "name"\n')
    assert "line 4: unknown key 'provder'" in message and "'provider'" in message
    message = _error('source = "a"\ntarget = "b"\nmodel = { path = "m.pkl", max_ag = "1d" }\n')
    assert "line 3: unknown key 'max_ag' in [model]" in message


@pytest.mark.parametrize("line, expected", [
    ('scale = "big"', "'scale' must be a positive number such as 0.5 or 2; found the string 'big'"),
    ("scale = 0", "'scale' must be a positive number"),
    ("scale = true", "'scale' must be a positive number"),
    ("seed = 1.5", "'seed' must be an integer >= 0; found a number (1.5)"),
    ("seed = -1", "'seed' must be an integer >= 0"),
    ('include = "Track"', "'include' must be a list of table names"),
    ("exclude = [1, 2]", "'exclude' must be a list of table names"),
    ("locales = []", "'locales' must be a list of Faker locales"),
    ('locales = ["en_UK"]', "'locales' names the unknown locale 'en_UK'; did you mean 'en_US'?"),
    ('if_exists = "replce"', "'if_exists' must be one of fail, replace, truncate, append; found "
                             "'replce'; did you mean 'replace'?"),
    ('schema = "public"', "'schema' must be a table (keys: source, target)"),
    ("source = 3", "'source' must be a string; found an integer (3)"),
    ('source = ""', "'source' must not be empty"),
    ('source = "nope://h/db"', "'source' names the unknown database kind 'nope'"),
    ('source = "postgresql://h:port/db"', "'source' is not a database URL"),
])
def test_wrong_types_name_key_and_line(line, expected):
    text = f'source = "a.sqlite"\ntarget = "b.sqlite"\n{line}\n'
    if line.startswith("source"):
        text = f'target = "b.sqlite"\n# a comment\n{line}\n'
    message = _error(text)
    assert message.startswith("job.toml, line 3: "), message
    assert expected in message


@pytest.mark.parametrize("section, expected", [
    ('[tables.T]\ndefault_distribution = "gaussian_kde"', "cannot be 'gaussian_kde'"),
    ('[tables.T]\nnumerical_distributions = { x = "nrom" }',
     "'tables.T.numerical_distributions.x' must be one of norm"),
    ('[tables.T]\nnumerical_distributions = ["x"]', "must be a table of column = distribution"),
    ("[tables.T]\nenforce_rounding = 1", "'tables.T.enforce_rounding' must be true or false"),
    ("[tables.T]\nscale = 2", "'tables.T.scale' is not supported yet"),
    ('[columns."T.c"]\nprovider = "emial"', "'emial', which is not a Faker provider"),
    ('[columns."T.c"]\nsdtype = "numerica"', "unknown sdtype 'numerica'; did you mean 'numerical'?"),
    ('[columns."T.c"]\ncategorical = "yes"', "'columns.\"T.c\".categorical' must be true or false"),
    ('[model]\nmax_age = "7x"\npath = "m.pkl"', "'model.max_age' must be a duration"),
    ("[model]\npath = 3", "'model.path' must be a string"),
    ('[model]\npath = "m.pkl"', "'model.path' is m.pkl, a pickle model, and a pickle is "
                                "executable input in general, so a job keeps one only when "
                                "trusted: use a .json model path, or set trust_pickle = true"),
    ('[model]\npath = "m.bin"\ntrust_pickle = false', "'model.path' is m.bin, a pickle model"),
    ('[model]\ntrust_pickle = "yes"\npath = "m.pkl"', "'model.trust_pickle' must be true or false"),
])
def test_wrong_values_in_sections(section, expected):
    message = _error(f'source = "a"\ntarget = "b"\n{section}\n')
    assert message.startswith("job.toml, line 4: "), message
    assert expected in message


def test_column_override_shape_errors():
    assert "line 3" in _error('source = "a"\ntarget = "b"\n[columns.Track]\nsdtype = "id"\n')
    message = _error('source = "a"\ntarget = "b"\n[columns."T.c"]\n'
                     'provider = "email"\ncategorical = true\n')
    assert "line 3" in message and "sets both provider and categorical" in message
    assert "sets nothing" in _error('source = "a"\ntarget = "b"\n[columns."T.c"]\n')
    assert "sets nothing" in _error('source = "a"\ntarget = "b"\n[tables.T]\n')


def test_report_path_is_checked_and_relative_to_the_job_file():
    assert _job('source = "a"\ntarget = "b"\nreport = "out/r.html"\n').report == Path(
        "/jobs/out/r.html")
    assert _job('source = "a"\ntarget = "b"\nreport = "r.JSON"\n').report == Path("/jobs/r.JSON")
    message = _error('source = "a"\ntarget = "b"\nreport = "report.pdf"\n')
    assert message.startswith("job.toml, line 3: 'report' must name an .html or a .json file")
    assert "'report' must be a string" in _error('source = "a"\ntarget = "b"\nreport = true\n')


def test_missing_required_keys_and_bad_syntax(tmp_path):
    assert "required key(s) target are missing" in _error('source = "a"\n')
    message = _error('source = "a"\ntarget = \n')
    assert "is not valid TOML" in message and "line 2" in message
    with pytest.raises(ConfigError, match="Cannot read the job file"):
        load_job(tmp_path / "missing.toml")


def test_a_byte_order_mark_and_windows_line_endings_are_accepted(tmp_path):
    path = tmp_path / "job.toml"
    path.write_bytes(b'\xef\xbb\xbfsource = "a.sqlite"\r\ntarget = "b.sqlite"\r\nsacle = 1\r\n')
    with pytest.raises(ConfigError, match="line 3: unknown key 'sacle'"):
        load_job(path)


def test_max_rows_number_or_per_table():
    assert _job('source = "a"\ntarget = "b"\nmax_rows = 5000\n').max_rows == 5000
    job = _job('source = "a"\ntarget = "b"\nmax_rows = { Invoice = 100 }\n')
    assert job.max_rows == {"Invoice": 100}
    for value in ("0", '"many"', "{ Invoice = -1 }", "{}"):
        message = _error(f'source = "a"\ntarget = "b"\nmax_rows = {value}\n')
        assert message.startswith("job.toml, line 3: 'max_rows' must be a positive integer")


def test_max_age_needs_a_path_and_durations():
    assert "needs model.path" in _error('source = "a"\ntarget = "b"\n[model]\nmax_age = "1d"\n')
    for text, seconds in (("45s", 45), ("30m", 1800), ("2w", 1209600), ("1.5h", 5400)):
        job = _job(f'source = "a"\ntarget = "b"\n[model]\npath = "m.json"\nmax_age = "{text}"\n')
        assert job.model_max_age == timedelta(seconds=seconds)


def test_password_is_hidden_in_a_bad_url_message():
    message = _error('source = "postgresql://u:hunter2@h:notaport/db"\ntarget = "b"\n')
    assert "hunter2" not in message and "line 1" in message


def test_key_lines_follows_headers_dotted_keys_and_skips_multiline_values():
    text = ('a = 1\nlist = [\n  "x = y",\n]\n[t."q.r"]\nb.c = 2\ns = """\nfake = 1\n"""\n'
            'inline = { d = 3 }\n')
    lines = key_lines(text)
    assert lines[("a",)] == 1 and lines[("list",)] == 2
    assert lines[("t", "q.r")] == 5 and lines[("t", "q.r", "b", "c")] == 6
    assert ("t", "q.r", "fake") not in lines and ("x",) not in lines
    assert lines[("t", "q.r", "inline", "d")] == 10
