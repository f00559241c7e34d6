"""The package's layout rules (docs/architecture.md), checked on the source with ``ast``.

Every import counts, those inside functions included: one folder per stage, imports only from the
same folder or an earlier stage, another folder only through its ``__init__``, no import cycle,
no ``_private`` name taken from another module, and no ``obj._private`` read of another object.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hma_db"

# The stages in pipeline order; a unit imports only from itself and from units before it.
# "hma_db" is the package face (the public API); only the command line comes after it.
ORDER = ["_version", "errors", "progress", "engines", "schema", "source", "transform", "model",
         "target", "synthesizer", "report", "cluster", "pipeline", "jobs", "hma_db", "cli"]
MAX_MODULES_PER_FOLDER = 12
MAX_TOP_LEVEL_MODULES = 6


def _modules() -> dict[str, Path]:
    """``{dotted name: path}`` of every module of the package (``__init__`` as the folder)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _face_names(module: str) -> set[str]:
    """The names a folder's ``__init__`` binds (a function may share its module's name)."""
    path = MODULES[module]
    if path.name != "__init__.py":
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


FACES = {module: _face_names(module) for module in MODULES}


def _unit(module: str) -> str:
    """The stage a module belongs to: its folder, or itself at the top level."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "hma_db"


def _resolve(name: str) -> str | None:
    """The package module an imported dotted name lives in (None: not part of hma_db)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import of ``module``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                is_module = submodule in MODULES and alias.name not in FACES.get(base, ())
                found.append((submodule, None, node.lineno) if is_module
                             else (base, alias.name, node.lineno))
    return [(target, name, line) for raw, name, line in found
            if raw.split(".")[0] == "hma_db" and (target := _resolve(raw)) and target != module]


GRAPH = {module: _imports(module) for module in MODULES}


def _where(module: str, line: int) -> str:
    return f"{MODULES[module].relative_to(PACKAGE.parent)}:{line}"


def test_every_unit_is_in_the_order():
    missing = sorted({_unit(m) for m in MODULES} - set(ORDER))
    assert not missing, f"folders or top-level modules missing from ORDER: {missing}"


def test_imports_run_only_downward():
    wrong = [f"{_where(m, line)}: {m} ({_unit(m)}) imports {target} ({_unit(target)})"
             for m, imports in GRAPH.items() for target, _, line in imports
             if ORDER.index(_unit(target)) > ORDER.index(_unit(m))]
    assert not wrong, "imports from a later stage:\n" + "\n".join(wrong)


def test_other_folders_are_imported_through_their_init():
    wrong = [f"{_where(m, line)}: {m} imports {target}"
             for m, imports in GRAPH.items() for target, _, line in imports
             if _unit(target) != _unit(m) and target.count(".") > 1]
    assert not wrong, "a module of another folder imported directly:\n" + "\n".join(wrong)


def test_no_private_name_is_imported_from_another_module():
    wrong = [f"{_where(m, line)}: {m} imports {target}.{name}"
             for m, imports in GRAPH.items() for target, name, line in imports
             if name and name.startswith("_") and not name.startswith("__")]
    assert not wrong, "private names crossing modules:\n" + "\n".join(wrong)


def _private_names(tree: ast.Module) -> set[str]:
    """The ``_private`` functions, classes and attributes a module defines."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def test_no_private_attribute_of_another_module_is_read():
    """``obj._x`` where ``_x`` belongs to another module's objects (the synthesizer's
    ``_fitted_model`` read by the sampler, say) couples two modules through a private name."""
    trees = {m: ast.parse(p.read_text(encoding="utf-8")) for m, p in MODULES.items()}
    own = {m: _private_names(tree) for m, tree in trees.items()}
    everywhere = set().union(*own.values())
    wrong = []
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in everywhere \
                    and node.attr not in own[module]:
                wrong.append(f"{_where(module, node.lineno)}: {ast.unparse(node)}")
    assert not wrong, "private attributes read from outside their object:\n" + "\n".join(wrong)


def test_no_import_cycle():
    edges = {m: {target for target, _, _ in imports} for m, imports in GRAPH.items()}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(" <-> ".join(sorted(component)))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_folders_stay_small():
    per_folder = defaultdict(list)
    for module, path in MODULES.items():
        if path.name != "__init__.py" or module == "hma_db":
            per_folder[path.parent.name].append(path.name)
    top = per_folder.pop("hma_db")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"top level holds {sorted(top)}"
    crowded = {folder: len(files) for folder, files in per_folder.items()
               if len(files) > MAX_MODULES_PER_FOLDER}
    assert not crowded, f"folders over {MAX_MODULES_PER_FOLDER} modules: {crowded}"


@pytest.mark.parametrize("folder", sorted(p.name for p in PACKAGE.iterdir()
                                          if (p / "__init__.py").exists()))
def test_every_folder_says_what_it_takes_and_gives(folder):
    init = PACKAGE / folder / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 15, f"{init} needs a docstring saying what the stage does"


def test_the_checker_sees_a_cycle_and_a_late_import(tmp_path, monkeypatch):
    """The rules above can fail: a planted upward import and cycle are found."""
    planted = dict(GRAPH)
    planted["hma_db.schema.metadata"] = [*GRAPH["hma_db.schema.metadata"],
                                         ("hma_db.target", "write", 1)]
    planted["hma_db.target"] = [*GRAPH["hma_db.target"], ("hma_db.schema.metadata", None, 1)]
    monkeypatch.setattr(__import__(__name__), "GRAPH", planted)
    with pytest.raises(AssertionError, match="later stage"):
        test_imports_run_only_downward()
    with pytest.raises(AssertionError, match="cycles"):
        test_no_import_cycle()
    with pytest.raises(AssertionError, match="directly"):
        test_other_folders_are_imported_through_their_init()
