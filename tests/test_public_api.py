"""Every documented public import resolves to the documented object, not to a module: each
package's `__all__` (after all its submodules are imported, which binds submodules as package
attributes) and every `from sgbench... import ...` in README.md and docs/*.md code blocks."""

import importlib
import pkgutil
import re
import types
from pathlib import Path

import pytest

import sgbench

REPO = Path(__file__).resolve().parents[1]
PACKAGES = sorted(m.name for m in pkgutil.iter_modules(sgbench.__path__, "sgbench.") if m.ispkg)


def _import_all_submodules(package: str) -> None:
    pkg = importlib.import_module(package)
    for m in pkgutil.walk_packages(pkg.__path__, package + "."):
        importlib.import_module(m.name)


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_is_an_object_not_a_module(package):
    _import_all_submodules(package)
    pkg = importlib.import_module(package)
    names = getattr(pkg, "__all__", [])
    modules = [n for n in names if isinstance(getattr(pkg, n), types.ModuleType)]
    assert modules == [], f"{package}.{{{', '.join(modules)}}} resolve to submodules"


def _doc_imports():
    """(file:line, module, names) of every `from sgbench... import ...` in fenced code blocks."""
    out = []
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        text = doc.read_text()
        for block in re.finditer(r"```[^\n]*\n(.*?)```", text, re.S):
            code, start = block.group(1), text[: block.start(1)].count("\n") + 1
            for m in re.finditer(r"^from (sgbench[\w.]*) import (\([^)]*\)|[^\n#]+)", code, re.M):
                names = [n.strip().split(" as ")[0] for n in m.group(2).strip("()").split(",") if n.strip()]
                line = start + code[: m.start()].count("\n")
                out.append((f"{doc.name}:{line}", m.group(1), names))
    return out


DOC_IMPORTS = _doc_imports()


def test_the_docs_show_imports():
    assert any(name == "inception_score" for _, _, names in DOC_IMPORTS for name in names)


@pytest.mark.parametrize("where,module,names", DOC_IMPORTS, ids=[w for w, _, _ in DOC_IMPORTS])
def test_documented_imports_resolve_to_functions_and_classes(where, module, names):
    for sub in ("sgbench.metrics", "sgbench.sampling", "sgbench.models"):  # submodules bound as attributes
        _import_all_submodules(sub)
    ns: dict = {}
    exec(f"from {module} import {', '.join(names)}", ns)
    modules = [n for n in names if isinstance(ns[n], types.ModuleType)]
    assert modules == [], f"{where}: {modules} are modules"


def test_readme_metric_example_runs():
    """README's metric functions are called as documented ('module' object is not callable before)."""
    import numpy as np

    from sgbench.metrics import frechet_distance, inception_score, lpips_distance, precision_recall

    _import_all_submodules("sgbench.metrics")
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    assert frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)) > 0
    assert inception_score(rng.standard_normal((20, 5))) > 1
    assert all(0 <= v <= 1 for v in precision_recall(x, y, dtype="float32"))
    assert callable(lpips_distance)
