import types

import hma_db


def _isort_key(name: str) -> tuple[int, str]:
    """isort's (and ruff RUF022's) order: CONSTANTS, then Classes, then functions and dunders."""
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def test_all_is_sorted_and_unique():
    assert list(hma_db.__all__) == sorted(hma_db.__all__, key=_isort_key)
    assert len(set(hma_db.__all__)) == len(hma_db.__all__)


def test_every_name_in_all_exists():
    missing = [name for name in hma_db.__all__ if not hasattr(hma_db, name)]
    assert missing == []


def test_every_public_name_is_in_all():
    # Submodules become attributes of the package when imported; they are not the API.
    public = {name for name, value in vars(hma_db).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert sorted(public - set(hma_db.__all__)) == []


def test_errors_share_one_root():
    errors = [getattr(hma_db, n) for n in hma_db.__all__ if n.endswith("Error")]
    assert errors and all(issubclass(e, hma_db.HmaDbError) for e in errors)


def test_import_is_light():
    # ``hma-db --help`` and ``import hma_db.errors`` must not pay for pandas, scipy and copulas.
    import subprocess
    import sys

    code = "import sys, hma_db; print(sorted({'pandas', 'scipy', 'sqlalchemy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_command_line_loads_the_model_libraries_only_when_a_command_needs_them():
    # 'hma-db --help' and usage errors answer without importing scipy, copulas, rdt or faker.
    import subprocess
    import sys

    code = ("import sys, hma_db.cli; "
            "print(sorted({'scipy', 'copulas', 'rdt', 'faker'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_functions_named_like_their_module_stay_functions():
    # Importing hma_db.clone imports hma_db.reflect and hma_db.write on the way; the package
    # must still hand out the functions, whatever was imported first.
    import subprocess
    import sys

    code = ("import hma_db.pipeline, hma_db.cli\n"
            "from hma_db import clone, reflect, write\n"
            "print(all(callable(f) and f.__name__ == n for f, n in "
            "[(clone, 'clone'), (reflect, 'reflect'), (write, 'write')]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
