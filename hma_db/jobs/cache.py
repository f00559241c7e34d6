"""The model cache of a job: reuse the saved model while it matches the job and is young
enough, and save a new one so that a crash never leaves half a file."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from hma_db.errors import ModelFileError
from hma_db.jobs.file import Job
from hma_db.synthesizer import HMASynthesizer, format_for, load_synthesizer


def fingerprint(synthesizer: HMASynthesizer) -> str:
    """A hash of what a model was (or will be) fitted for: metadata, parameters, locales, seed,
    the found rules asked for.

    Example:
        >>> fingerprint(load_synthesizer("model.json")) == fingerprint(job_synthesizer(md, job))
    """
    metadata = synthesizer.get_metadata()
    state = {"metadata": metadata.to_dict(),
             "parameters": {t: synthesizer.get_table_parameters(t) for t in sorted(metadata.tables)},
             "locales": list(synthesizer.locales), "seed": synthesizer.seed,
             "rules": [synthesizer.find_rules, sorted(synthesizer.skip_rules)]}
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _age(synthesizer: HMASynthesizer, path: Path) -> dt.timedelta:
    fitted = synthesizer.fit_date
    if fitted:
        when = dt.datetime.fromisoformat(fitted)
    else:  # a model saved before it was fitted has no date: use the file's
        when = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc) - when


def _days(delta: dt.timedelta) -> str:
    seconds = delta.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def cached_model(job: Job, wanted: HMASynthesizer) -> tuple[HMASynthesizer | None, str]:
    """The saved model when it can be reused, else None; and the reason, for the log.

    Raises:
        ModelFileError: ``model.path`` exists but is not an hma_db model, or is a pickle (told
            by its first bytes, whatever its name) and the job has no ``trust_pickle = true``.
    """
    path = job.model_path
    if path is None:
        return None, "no model cache in the job file"
    if not path.exists():
        return None, f"no saved model at {path} yet"
    model = load_synthesizer(path, trust_pickle=job.model_trust_pickle)
    if not model.get_info().get("is_fit"):
        return None, f"the model at {path} was never fitted"
    if fingerprint(model) != fingerprint(wanted):
        return None, ("the source schema or the job's column, table, locale or seed settings "
                      "changed since the model was fitted")
    age = _age(model, path)
    if job.model_max_age is not None and age > job.model_max_age:
        return None, (f"the model is {_days(age)} old, older than max_age "
                      f"{_days(job.model_max_age)}")
    return model, f"the model at {path} matches the source schema and is {_days(age)} old"


def save_model(synthesizer: HMASynthesizer, path: Path) -> None:
    """Save next to the old model, then swap, so a crash never leaves half a model file.

    ``.json`` files get the JSON format, anything else a pickle. The folder is created.

    Raises:
        ModelFileError: the file cannot be written.
    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        synthesizer.save(temporary, format=format_for(path))
        os.replace(temporary, path)
    except OSError as exc:
        raise ModelFileError(f"Cannot save the model to '{path}': {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)
