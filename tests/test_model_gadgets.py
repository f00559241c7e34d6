"""Model files are input: a corpus of known pickle gadgets never runs, and pickles are opt-in.

Each gadget is written opcode by opcode (``GLOBAL`` or ``STACK_GLOBAL``, then ``REDUCE``) inside
an hma_db model document, so that it is reached only by an unpickler that admits its callable; run
by plain :func:`pickle.loads`, each one creates its own marker file (checked first, so the corpus
is known to be live). Every file must then be refused with :class:`~hma_db.ModelFileError` by
the Python calls and by ``hma-db sample`` with and without ``--trust-pickle``, and by a job, and
no marker may appear. Also here: the command line's opt-in, the signing of pickles under
``HMA_DB_MODEL_KEY``, and SDV's ``save`` / ``load_synthesizer`` on pickles, unchanged.
"""

from __future__ import annotations

import copyreg
import hashlib
import hmac
import logging
import pickletools
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import CHINOOK_SQLITE

from hma_db import HMASynthesizer, Metadata, ModelFileError, load_synthesizer
from hma_db.cli.main import cli
from hma_db.jobs.file import load_job
from hma_db.jobs.run import run_job
from hma_db.synthesizer import files as model_files

KEY = "HMA_DB_MODEL_KEY"


@pytest.fixture(autouse=True)
def _no_key(monkeypatch):
    monkeypatch.delenv(KEY, raising=False)


# ------------------------------------------------------------------------------ opcodes
def _text(value: str) -> bytes:
    data = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def _bytes(value: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(value)) + value  # BINBYTES


def _global(module: str, name: str, via: str) -> bytes:
    if via == "GLOBAL":
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
    return _text(module) + _text(name) + b"\x93"  # STACK_GLOBAL


def _call(callable_: bytes, *args: bytes) -> bytes:
    """``callable_(*args)``: the arguments as a tuple, then REDUCE."""
    return callable_ + b"(" + b"".join(args) + b"t" + b"R"  # MARK ... TUPLE, REDUCE


def _document(gadget: bytes) -> bytes:
    """An hma_db model document whose synthesizer state is the gadget's result (protocol 5)."""
    return (b"\x80\x05}(" + _text("format") + _text(model_files.FORMAT) + _text("version")
            + b"K" + bytes([model_files.VERSION]) + _text("synthesizer") + gadget + b"u.")


def _touch(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def _system(marker: Path, via: str) -> bytes:
    """``os.system('touch marker')``: the payload of the gadgets that load another pickle."""
    return _call(_global("os", "system", via), _text(f"touch {shlex.quote(str(marker))}"))


def _gadget(name: str, marker: Path, via: str, work: Path) -> bytes:
    g = lambda module, attr: _global(module, attr, via)  # noqa: E731 - a local shorthand
    os_module = _call(g("builtins", "__import__"), _text("os"))
    shell = _text(f"touch {shlex.quote(str(marker))}")
    inner = work / f"inner-{name}-{via}.pkl"  # a plain pickle for the loaders that read a file
    inner.write_bytes(b"\x80\x05" + _system(marker, via) + b".")
    inner_bytes = b"\x80\x05" + _system(marker, via) + b"."
    gadgets = {
        "numpy.testing._private.utils.runstring": _call(
            g("numpy.testing._private.utils", "runstring"), _text(_touch(marker)), b"}"),
        "os.system": _system(marker, via),
        "subprocess.Popen": _call(g("subprocess", "Popen"),
                                  b"](" + _text("touch") + _text(str(marker)) + b"e"),
        "builtins.eval": _call(g("builtins", "eval"), _text(_touch(marker))),
        "builtins.exec": _call(g("builtins", "exec"), _text(_touch(marker))),
        "builtins.getattr": _call(_call(g("builtins", "getattr"), os_module, _text("system")),
                                  shell),
        "functools.partial": _call(_call(g("functools", "partial"), g("os", "system"), shell)),
        "operator.attrgetter": _call(_call(_call(g("operator", "attrgetter"), _text("system")),
                                           os_module), shell),
        "pandas.io.pickle.read_pickle": _call(g("pandas.io.pickle", "read_pickle"),
                                              _text(str(inner))),
        # import_module is asked for first; its module is kept in memo 0 for getattr.
        "importlib.import_module": _call(g("importlib", "import_module"), _text("os"))
        + b"q\x000" + _call(_call(g("builtins", "getattr"), b"h\x00", _text("system")), shell),
        "pickle.loads": _call(g("pickle", "loads"), _bytes(inner_bytes)),
        "codecs.decode": _call(g("codecs", "decode"), _text(inner_bytes.hex()), _text("hex"))
        + b"q\x000" + _call(g("pickle", "loads"), b"h\x00"),
        "numpy.load": _call(g("numpy", "load"), _text(str(inner)), b"N", b"\x88"),
    }
    return _document(gadgets[name])


GADGETS = ["numpy.testing._private.utils.runstring", "os.system", "subprocess.Popen",
           "builtins.eval", "builtins.exec", "builtins.getattr", "functools.partial",
           "operator.attrgetter", "pandas.io.pickle.read_pickle", "importlib.import_module",
           "pickle.loads", "codecs.decode", "numpy.load"]
CASES = [(name, via) for name in GADGETS for via in ("GLOBAL", "STACK_GLOBAL")]


def _corpus(work: Path) -> dict[tuple[str, str], tuple[Path, Path]]:
    """``{(gadget, opcode): (model file, marker)}``, written into ``work``."""
    corpus = {}
    for name, via in CASES:
        marker = work / f"pwned-{name}-{via}"
        path = work / f"{name}-{via}.pkl"
        path.write_bytes(_gadget(name, marker, via, work))
        corpus[name, via] = path, marker
    return corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[tuple[str, str], tuple[Path, Path]]:
    return _corpus(tmp_path_factory.mktemp("gadgets"))


def _markers(corpus) -> list[Path]:
    return [marker for _, marker in corpus.values() if marker.exists()]


def test_every_gadget_of_the_corpus_runs_under_a_plain_unpickler(tmp_path):
    """The corpus is live: plain pickle.load, in another process, creates every marker."""
    corpus = _corpus(tmp_path)
    paths = [str(path) for path, _ in corpus.values()]
    code = ("import pickle, sys\n"
            "for p in sys.argv[1:]:\n"
            "    with open(p, 'rb') as f:\n"
            "        pickle.load(f)\n")
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10  # subprocess.Popen's touch runs on its own
    while len(_markers(corpus)) < len(corpus) and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = [key for key, (_, marker) in corpus.items() if not marker.exists()]
    assert not missing
    for path, _ in corpus.values():  # each is a well-formed opcode stream
        list(pickletools.genops(path.read_bytes()))


@pytest.mark.parametrize("name, via", CASES)
def test_a_gadget_is_refused_by_the_python_calls(corpus, name, via):
    path, marker = corpus[name, via]
    for load in (load_synthesizer, HMASynthesizer.load):
        with pytest.raises(ModelFileError) as refused:
            load(path)
        # Refused at the first class the file asks for: the gadget's own callable.
        module, _, attr = name.rpartition(".")
        assert f"asks for {module}.{attr}; an hma_db model names no class" in str(refused.value)
    time.sleep(0.01)
    assert not marker.exists() and not _markers(corpus)


@pytest.mark.parametrize("name, via", CASES)
def test_a_gadget_is_refused_by_the_command_line_with_and_without_trust_pickle(corpus, tmp_path,
                                                                               name, via):
    path, marker = corpus[name, via]
    for trust, fragment in (([], "is a pickle model"), (["--trust-pickle"], "an hma_db model "
                                                                            "names no class")):
        done = CliRunner().invoke(cli, ["sample", str(path), str(tmp_path / "out.sqlite"),
                                        *trust])
        assert done.exit_code == 2, done.output
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
        assert "Traceback" not in done.output
    time.sleep(0.01)
    assert not marker.exists() and not _markers(corpus)
    assert not (tmp_path / "out.sqlite").exists()


@pytest.mark.parametrize("name", GADGETS)
def test_a_gadget_is_refused_by_a_job_with_and_without_trust_pickle(corpus, tmp_path, name):
    source, _ = corpus[name, "STACK_GLOBAL"]
    job = tmp_path / "job.toml"
    for model, trust, fragment in (("model.pkl", "trust_pickle = true\n", "names no class"),
                                   ("model.json", "", "is a pickle model")):  # told by its bytes
        (tmp_path / model).write_bytes(source.read_bytes())
        job.write_text(f'source = "{CHINOOK_SQLITE}"\ntarget = "sqlite:///out.sqlite"\n'
                       f'include = ["Genre"]\n[model]\npath = "{model}"\n{trust}')
        with pytest.raises(ModelFileError, match=fragment):
            run_job(load_job(job))
    time.sleep(0.01)
    assert not _markers(corpus) and not (tmp_path / "out.sqlite").exists()


def _pickle_ops(body: bytes) -> bytes:
    return b"\x80\x05" + body + b"."


@pytest.mark.parametrize("label, data, fragment", [
    # The 0.1 exploit's shape: the legacy synthesizer class first, a gadget after it.
    ("legacy class, then runstring",
     lambda m: _document(_global("hma_db.synthesizer", "HMASynthesizer", "GLOBAL")
                         + b"0" + _call(_global("numpy.testing._private.utils", "runstring",
                                                "GLOBAL"), _text(_touch(m)), b"}")),
     "saved by hma_db 0.1"),
    ("INST", lambda m: _pickle_ops(b"(" + _text(f"touch {m}") + b"ios\nsystem\n"),
     "asks for os.system"),
    ("OBJ", lambda m: _pickle_ops(b"(" + _global("os", "system", "GLOBAL") + _text(f"touch {m}")
                                  + b"o"), "asks for os.system"),
    ("NEWOBJ", lambda m: _pickle_ops(_global("subprocess", "Popen", "STACK_GLOBAL") + b"("
                                     + b"](" + _text("touch") + _text(str(m)) + b"e" + b"t"
                                     + b"\x81"), "asks for subprocess.Popen"),
    ("protocol 0", lambda m: b"cos\nsystem\n(" + f"S'touch {m}'\n".encode() + b"tR.",
     "is not an hma_db model"),
])
def test_other_opcodes_that_import_are_refused(tmp_path, label, data, fragment):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pkl"
    path.write_bytes(data(marker))
    with pytest.raises(ModelFileError, match=fragment):
        load_synthesizer(path)
    time.sleep(0.01)
    assert not marker.exists(), label


def test_an_extension_code_goes_through_the_allow_list_too(tmp_path):
    """EXT1 names a registered (module, name) by number: the unpickler still asks find_class."""
    marker = tmp_path / "pwned"
    copyreg.add_extension("os", "system", 0xF1)
    try:
        (tmp_path / "model.pkl").write_bytes(_document(b"\x82\xf1(" + _text(f"touch {marker}")
                                                       + b"tR"))
        with pytest.raises(ModelFileError, match="asks for os.system"):
            load_synthesizer(tmp_path / "model.pkl")
    finally:
        copyreg.remove_extension("os", "system", 0xF1)
    assert not marker.exists()


# ------------------------------------------------------------------------ the allow-list
def _globals_named(data: bytes) -> set[tuple[str, str]]:
    """Every (module, name) a pickle asks for (GLOBAL, INST, or STACK_GLOBAL after two strings)."""
    named, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            named.add(tuple(arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            named.add((strings[-2], strings[-1]))
        elif isinstance(arg, str):
            strings.append(arg)
        elif op.name.startswith("EXT"):
            named.add(("<extension>", str(arg)))
    return named


def _fitted() -> HMASynthesizer:
    data = {"parent": pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.5, 3.0],
                                    "when": pd.to_datetime(["2020-01-01", "2021-05-06", None])}),
            "child": pd.DataFrame({"cid": [1, 2, 3, 4], "pid": [1, 1, 2, 3],
                                   "kind": ["a", "b", "a", "a"]})}
    synthesizer = HMASynthesizer(Metadata.detect_from_dataframes(data), seed=3, verbose=False)
    synthesizer.fit(data)
    return synthesizer


@pytest.fixture(scope="module")
def chinook_pickle(tmp_path_factory) -> Path:
    """A pickle of a model of three Chinook tables (dates, decimals, text, keys)."""
    from hma_db import read_tables, reflect

    url = f"sqlite:///{CHINOOK_SQLITE}"
    metadata = reflect(url, include=["Customer", "Invoice", "Employee"])
    synthesizer = HMASynthesizer(metadata, seed=2, verbose=False)
    synthesizer.fit(read_tables(url, metadata))
    path = tmp_path_factory.mktemp("model") / "chinook.pkl"
    synthesizer.save(path)
    return path


def test_the_allow_list_is_exactly_what_the_projects_pickles_name(chinook_pickle, tmp_path):
    _fitted().save(tmp_path / "small.pkl")
    HMASynthesizer(_fitted().get_metadata()).save(tmp_path / "unfitted.pkl")
    needed = set()
    for path in (chinook_pickle, tmp_path / "small.pkl", tmp_path / "unfitted.pkl"):
        needed |= _globals_named(path.read_bytes())
    assert isinstance(model_files.ALLOWED_GLOBALS, frozenset)
    assert needed == set(model_files.ALLOWED_GLOBALS)
    # The helper sees what it must: a gadget's global, by either opcode.
    assert _globals_named(_pickle_ops(_system(tmp_path / "m", "STACK_GLOBAL"))) == \
        {("os", "system")}


# ----------------------------------------------------------------- the command line's opt-in
def test_the_command_line_loads_a_pickle_only_with_trust_pickle(chinook_pickle, tmp_path):
    out = tmp_path / "out.sqlite"
    done = CliRunner().invoke(cli, ["sample", str(chinook_pickle), str(out)])
    assert done.exit_code == 2 and not out.exists()
    assert done.stderr == (f"error: '{chinook_pickle}' is a pickle model, and a pickle is "
                           "executable input in general, so it is loaded only when trusted: use "
                           "a .json model, or pass --trust-pickle (a job file: trust_pickle = true "
                           "under [model]) if the file comes from a trusted place.\n")
    disguised = tmp_path / "model.json"  # a pickle by any other name is still a pickle
    disguised.write_bytes(chinook_pickle.read_bytes())
    done = CliRunner().invoke(cli, ["sample", str(disguised), str(out)])
    assert done.exit_code == 2 and "is a pickle model" in done.stderr and not out.exists()
    done = CliRunner().invoke(cli, ["sample", str(chinook_pickle), str(out), "--trust-pickle"])
    assert done.exit_code == 0, done.stderr
    assert "Wrote " in done.stdout and out.is_file()


def test_a_job_runs_from_a_trusted_pickle_and_reuses_it(tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f'source = "{CHINOOK_SQLITE}"\ntarget = "sqlite:///out.sqlite"\n'
                   'include = ["Genre", "MediaType"]\nseed = 1\nif_exists = "replace"\n'
                   '[model]\npath = "model.pkl"\ntrust_pickle = true\n')
    assert run_job(load_job(job)).model == "fitted"
    assert (tmp_path / "model.pkl").read_bytes()[:2] == b"\x80\x05"
    assert run_job(load_job(job)).model == "reused"


# ---------------------------------------------------------------------------- SDV's calls
def test_save_and_load_synthesizer_read_and_write_pickles_as_sdv_does(tmp_path):
    """The README's example: save('x.pkl'), load_synthesizer / HMASynthesizer.load, sample."""
    synthesizer = _fitted()
    synthesizer.save(tmp_path / "model.pkl")
    synthesizer.save(tmp_path / "model.json")
    assert (tmp_path / "model.pkl").read_bytes()[:2] == b"\x80\x05"
    expected = load_synthesizer(tmp_path / "model.json").sample()
    for loaded in (load_synthesizer(tmp_path / "model.pkl"),
                   HMASynthesizer.load(tmp_path / "model.pkl")):
        for table, frame in loaded.sample().items():
            assert frame.equals(expected[table]), table
    with pytest.raises(ModelFileError, match="is a pickle model"):
        load_synthesizer(tmp_path / "model.pkl", trust_pickle=False)
    assert load_synthesizer(tmp_path / "model.json", trust_pickle=False).get_info()["is_fit"]


# -------------------------------------------------------------------------------- signing
def test_a_signed_pickle_round_trips_and_a_tampered_one_is_refused(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(KEY, "a-secret-key")
    synthesizer = _fitted()
    path = tmp_path / "model.pkl"
    synthesizer.save(path)
    data = path.read_bytes()
    header, body = data.split(b"\n", 1)
    assert header.startswith(b"HMADB-SIG1 ") and len(header) == len(b"HMADB-SIG1 ") + 64
    assert body[:2] == b"\x80\x05"
    expected = synthesizer.sample()
    for table, frame in load_synthesizer(path).sample().items():
        assert frame.equals(expected[table]), table

    tampered = tmp_path / "tampered.pkl"
    at = len(data) // 2
    tampered.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])
    with pytest.raises(ModelFileError, match="does not match its signature under HMA_DB_MODEL_KEY"):
        load_synthesizer(tampered)
    (tmp_path / "unsigned.pkl").write_bytes(body)
    with pytest.raises(ModelFileError, match="is an unsigned pickle and HMA_DB_MODEL_KEY is set"):
        load_synthesizer(tmp_path / "unsigned.pkl")
    (tmp_path / "cut.pkl").write_bytes(data[:30])
    with pytest.raises(ModelFileError, match="damaged signature header"):
        load_synthesizer(tmp_path / "cut.pkl")
    monkeypatch.setenv(KEY, "another-key")
    with pytest.raises(ModelFileError, match="does not match its signature"):
        load_synthesizer(path)

    monkeypatch.delenv(KEY)
    with caplog.at_level(logging.WARNING, logger="hma_db"):
        loaded = load_synthesizer(path)
    assert loaded.get_info()["is_fit"]
    assert any("signed but HMA_DB_MODEL_KEY is not set: its signature could not be verified"
               in r.getMessage() for r in caplog.records)
    done = CliRunner().invoke(cli, ["sample", str(path), str(tmp_path / "out.sqlite")])
    assert done.exit_code == 2 and "is a pickle model" in done.stderr  # signed is no opt-in


def test_a_mis_signed_gadget_is_refused_before_it_is_unpickled(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY, "a-secret-key")
    path, _ = corpus["os.system", "GLOBAL"]
    forged = tmp_path / "forged.pkl"
    forged.write_bytes(b"HMADB-SIG1 " + b"0" * 64 + b"\n" + path.read_bytes())
    with pytest.raises(ModelFileError, match="does not match its signature"):
        load_synthesizer(forged)
    with pytest.raises(ModelFileError, match="unsigned pickle"):
        load_synthesizer(path)
    # Signed with the right key, a gadget is still refused by the allow-list.
    signed = tmp_path / "signed.pkl"
    tag = hmac.new(b"a-secret-key", path.read_bytes(), hashlib.sha256).hexdigest()
    signed.write_bytes(b"HMADB-SIG1 " + tag.encode() + b"\n" + path.read_bytes())
    with pytest.raises(ModelFileError, match="asks for os.system"):
        load_synthesizer(signed)
    time.sleep(0.01)
    assert not _markers(corpus)


def test_json_models_are_not_signed_and_load_with_or_without_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY, "a-secret-key")
    synthesizer = _fitted()
    synthesizer.save(tmp_path / "model.json")
    assert (tmp_path / "model.json").read_bytes()[:1] == b"{"
    expected = synthesizer.sample()
    for key in ("a-secret-key", None):
        if key is None:
            monkeypatch.delenv(KEY)
        loaded = load_synthesizer(tmp_path / "model.json", trust_pickle=False)
        for table, frame in loaded.sample().items():
            assert frame.equals(expected[table]), table
