"""Model files: plain data in both formats, read the same by every later release.

``tests/data/models`` holds files written by hma_db 0.1.0 (see its README): its JSON model must
sample the very bytes that release sampled, and its pickle (live objects) must be refused with
what to do.
"""

from __future__ import annotations

import filecmp
import pickle
import pickletools
from pathlib import Path

import pytest
from click.testing import CliRunner

from hma_db import HMASynthesizer, ModelFileError, load_synthesizer
from hma_db.cli.main import cli
from hma_db.synthesizer import files as model_files

MODELS = Path(__file__).parent / "data" / "models"


def test_a_json_model_of_0_1_samples_the_rows_0_1_sampled(tmp_path):
    synthesizer = load_synthesizer(MODELS / "chinook-0.1.0.json")
    synthesizer.sample_to_directory(tmp_path / "rows", scale=0.2, format="csv")
    expected = sorted(p.name for p in (MODELS / "chinook-0.1.0-rows").iterdir())
    assert sorted(p.name for p in (tmp_path / "rows").iterdir()) == expected
    match, mismatch, errors = filecmp.cmpfiles(MODELS / "chinook-0.1.0-rows", tmp_path / "rows",
                                               expected, shallow=False)
    assert not mismatch and not errors, (mismatch, errors)


def test_the_command_line_samples_the_same_rows_from_a_0_1_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(cli, ["sample", str(MODELS / "chinook-0.1.0.json"), "rows/",
                                    "--format", "csv", "--scale", "0.2"])
    assert done.exit_code == 0, done.output
    for expected in (MODELS / "chinook-0.1.0-rows").iterdir():
        assert (tmp_path / "rows" / expected.name).read_bytes() == expected.read_bytes()


def test_a_pickle_of_0_1_is_refused_with_what_to_do():
    with pytest.raises(ModelFileError) as refused:
        load_synthesizer(MODELS / "tiny-0.1.0.pkl")
    message = str(refused.value)
    assert "saved by hma_db 0.1" in message and "save it as JSON" in message
    assert "Fit the model again" in message and "\n" not in message


def _fitted(tmp_path) -> HMASynthesizer:
    import pandas as pd

    from hma_db import Metadata

    data = {"parent": pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.5, 3.0],
                                    "when": pd.to_datetime(["2020-01-01", "2021-05-06", None])}),
            "child": pd.DataFrame({"cid": [1, 2, 3, 4], "pid": [1, 1, 2, 3],
                                   "kind": ["a", "b", "a", "a"]})}
    synthesizer = HMASynthesizer(Metadata.detect_from_dataframes(data), seed=3, verbose=False)
    synthesizer.fit(data)
    return synthesizer


def test_a_pickle_names_no_class_and_samples_like_json(tmp_path):
    synthesizer = _fitted(tmp_path)
    synthesizer.save(tmp_path / "model.pkl")
    synthesizer.save(tmp_path / "model.json")
    opcodes = {op.name for op, _, _ in pickletools.genops((tmp_path / "model.pkl").read_bytes())}
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "BUILD", "NEWOBJ"}
    assert (tmp_path / "model.json").read_bytes().lstrip().startswith(b"{")
    from_pickle = load_synthesizer(tmp_path / "model.pkl").sample()
    from_json = load_synthesizer(tmp_path / "model.json").sample()
    for table, frame in from_pickle.items():
        assert frame.equals(from_json[table]), table


class _Runstring:
    """What a crafted file asks for: numpy's ``runstring``, a bare ``exec`` with globals."""

    def __reduce__(self):
        from numpy.testing._private.utils import runstring

        return runstring, ("open('exploited', 'w').write('x')", {})


def test_a_model_file_that_asks_for_any_class_is_refused_before_it_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    document = {"format": model_files.FORMAT, "version": model_files.VERSION,
                "synthesizer": {"payload": _Runstring()}}
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(document, protocol=5))
    with pytest.raises(ModelFileError, match="runstring; an hma_db model names no class"):
        load_synthesizer(tmp_path / "model.pkl")
    assert not (tmp_path / "exploited").exists()
