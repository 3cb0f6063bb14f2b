"""The shape of the package, checked from its sources: packages that follow DESIGN.md's
"Layout" (each module in the package of its step, a long module only with a stated reason),
no import cycle, no module reaching into another's private names, and a start-up that loads
nothing heavy. ``pytest -s tests/test_layout.py`` prints each package's size."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tabnn
from tabnn import TabNNClassifier

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tabnn"
TESTS = Path(__file__).resolve().parent
LONG = 500  # lines: past about 500, a module usually holds more than one concept
# the modules allowed past LONG, each with the reason it stays one module (all in one place)
LONG_MODULES = {
    "tabnn.estimator.classifier": "TabNNClassifier, one class whose methods are scikit-learn's "
    "contract (its parameters already live in params.py)",
    "tabnn.artifact.directory": "saving and loading a model directory and verifying it whole: each "
    "check beside the write it mirrors",
    "tabnn.cli.app": "the Typer app: one thin function per command, whose options Typer "
    "reads from its signature",
    "tabnn.report.html": "one self-contained page: its CSS and the markup of each section",
}
# DESIGN.md "Layout": the packages in the one direction they import (a package imports only
# those before it; onnx_export comes before serving, which can serve its graphs), and the
# only modules that stay at the top of src/tabnn
PACKAGE_ORDER = (
    *("data", "features", "nn", "engine", "estimator", "evaluation", "report", "artifact"),
    *("inference", "onnx_export", "serving", "tuning", "scale", "workflows", "cli"),
)
PACKAGES = set(PACKAGE_ORDER)
TOP_LEVEL = {"tabnn", "tabnn.__main__", "tabnn.errors", "tabnn.tasks", "tabnn.io"}
# top-level modules not yet moved -> the package DESIGN.md puts them in (a first reading:
# the move decides); remove each one as it moves
NOT_YET_MOVED: dict[str, str] = {}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_nodes(tree: ast.AST):
    """Every node, bar what sits under ``if TYPE_CHECKING:`` (never imported at run time)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not (isinstance(child, ast.If) and is_type_checking(child)):
                stack.append(child)


def imported_modules(name: str, path: Path) -> set[str]:
    """The tabnn modules that ``name`` imports anywhere in its body (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` imports the submodule; `from pkg import name`, the package
            subs = [f"{base}.{alias.name}" for alias in node.names]
            targets = [sub if sub in MODULES else base for sub in subs]
        else:
            continue
        found |= {target for target in targets if target in MODULES and target != name}
    return found


def lines(name: str) -> int:
    return len(MODULES[name].read_text().splitlines())


def package_of(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def test_a_long_module_is_listed_with_its_reason():
    long = {name for name in MODULES if lines(name) > LONG}
    assert long - LONG_MODULES.keys() == set(), f"over {LONG} lines: split, or say why not"
    assert LONG_MODULES.keys() - long == set(), "no longer long: remove from LONG_MODULES"


def test_each_module_sits_in_a_package_of_the_design():
    top = {name for name in MODULES if package_of(name) == "tabnn"}
    assert top - TOP_LEVEL - NOT_YET_MOVED.keys() == set(), "put it in its package"
    assert NOT_YET_MOVED.keys() - top == set(), "moved: remove from NOT_YET_MOVED"
    assert set(NOT_YET_MOVED.values()) <= PACKAGES
    packages = {package_of(name).split(".")[1] for name in MODULES if name not in top}
    assert packages <= PACKAGES, "a package DESIGN.md's Layout does not name"


def test_package_sizes():
    """Each package's modules and lines, printed (``pytest -s``): the numbers to watch."""
    sizes: dict[str, list[int]] = {}
    for name in MODULES:
        sizes.setdefault(package_of(name), []).append(lines(name))
    print(f"\n{'package':<20} {'modules':>7} {'lines':>6} {'largest':>7}")
    for package, counts in sorted(sizes.items()):
        print(f"{package:<20} {len(counts):>7} {sum(counts):>6} {max(counts):>7}")
    assert sizes.keys() >= {"tabnn", "tabnn.cli", "tabnn.data"}


def test_every_module_says_what_it_owns():
    missing = [
        name
        for name, path in MODULES.items()
        if path.name != "__main__.py" and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the graph (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, nxt])):
                return cycle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_import_graph_has_no_cycle():
    graph = {name: imported_modules(name, path) for name, path in MODULES.items()}
    assert graph["tabnn.estimator.recipe"] >= {
        "tabnn.engine.train",  # imported inside fit_recipe: the graph counts it
        "tabnn.features.schema",
    }  # the graph is real
    assert find_cycle(graph) is None


def test_packages_import_one_way():
    """No package imports one after it in PACKAGE_ORDER, lazily inside a function or not:
    so no two packages import each other, and a split, a threshold or a metric that the
    estimator needs lives below it."""
    rank = {package: i for i, package in enumerate(PACKAGE_ORDER)}
    upward = []
    for name, path in MODULES.items():
        if name in TOP_LEVEL:
            continue
        package = name.split(".")[1]
        for target in imported_modules(name, path):
            other = target.split(".")[1] if target.count(".") else None
            if other in rank and rank[other] > rank[package]:
                upward.append(f"{name} -> {target}")
    assert upward == []


FIT_ONLY = (  # training code: predicting from a saved model must not import any of it
    *("tabnn.engine.train", "tabnn.engine.steps", "tabnn.engine.optim", "tabnn.engine.inputs"),
    *("tabnn.engine.kernels", "tabnn.engine.distributed", "tabnn.evaluation", "tabnn.tuning"),
    *("tabnn.data.splits", "tabnn.estimator.threshold", "tabnn.workflows", "tabnn.scale"),
)


def test_predicting_never_imports_training_code(tmp_path):
    frame = pd.DataFrame({"a": np.arange(40.0), "b": ["x", "y"] * 20, "t": [0, 1] * 20})
    model = TabNNClassifier(epochs=1).fit(frame[["a", "b"]], frame["t"])
    tabnn.save(model, tmp_path / "model")
    frame[["a", "b"]].to_csv(tmp_path / "rows.csv", index=False)
    report = (  # at exit, the FIT_ONLY modules imported
        "import atexit, sys\n"
        "fit_only = tuple(sys.argv[1].split(','))\n"
        "atexit.register(lambda: print(sorted(m for m in sys.modules if m.startswith(fit_only))))\n"
    )
    api = (
        "import tabnn, pandas; tabnn.load(sys.argv[2]).predict_proba(pandas.read_csv(sys.argv[3]))"
    )
    cli = (
        "import runpy; sys.argv = ['tabnn', 'predict', *sys.argv[2:]]; "
        "runpy.run_module('tabnn', run_name='__main__')"
    )
    for code, extra in ((api, []), (cli, ["-o", str(tmp_path / "out.csv")])):
        args = [",".join(FIT_ONLY), str(tmp_path / "model"), str(tmp_path / "rows.csv"), *extra]
        done = subprocess.run(
            [sys.executable, "-c", report + code, *args], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]"
    assert len(pd.read_csv(tmp_path / "out.csv")) == 40  # the command did predict


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def private_members() -> dict[str, str]:
    """Private names (``_x``, not dunders) defined in tabnn's classes and modules -> the
    module that defines them."""
    owners: dict[str, str] = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            defined = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                defined = [node.name]
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined = [node.attr]
            elif isinstance(node, ast.Assign):
                defined = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for item in defined:
                if item.startswith("_") and not item.startswith("__"):
                    owners.setdefault(item, name)
    return owners


def foreign_private_uses(path: Path, own: set[str], owners: dict[str, str]) -> list[str]:
    """``x._name`` (x not self or cls) and ``from tabnn... import _name`` of a private name
    that a module other than those in ``own`` defines."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in owners:
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls"):
                continue
            if owners[node.attr] not in own:
                uses.append(f"{path.name}:{node.lineno} .{node.attr}")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tabnn"):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    uses.append(f"{path.name}:{node.lineno} import {alias.name}")
    return uses


def test_no_module_touches_another_modules_private_names():
    owners = private_members()
    assert "_fit_stack" in owners  # the scan sees the estimator's private members
    uses = [u for name, path in MODULES.items() for u in foreign_private_uses(path, {name}, owners)]
    assert uses == []


@pytest.mark.parametrize("test_file", sorted(TESTS.glob("test_*.py")), ids=lambda p: p.stem)
def test_tests_go_through_public_names(test_file: Path):
    """A test file may test its own module's private helpers (test_data.py -> tabnn.data.*),
    never another module's."""
    owners = private_members()
    stem = test_file.stem.removeprefix("test_")
    own = {m for m in MODULES if stem in m.split(".")}
    assert foreign_private_uses(test_file, own, owners) == []


def test_import_tabnn_and_the_cli_load_nothing_heavy():
    code = (
        "import sys, tabnn, tabnn.cli; "
        "heavy = {'torch', 'pandas', 'numpy', 'sklearn', 'matplotlib', 'scipy', 'safetensors'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    lazy = "import sys, tabnn; tabnn.TabNNClassifier; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", lazy], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"  # the public names still load on use
