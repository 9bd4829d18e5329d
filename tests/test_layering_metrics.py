"""Layering rules of docs/design.md for data, config, sampling, metrics and t2i, checked on the
source (every import statement, also those inside functions). The models/guidance rules live
in their own test."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sgbench"

# package (or module path under sgbench/) -> packages it must never import
RULES = {
    "data": ("train", "models", "sampling", "guidance", "metrics", "search", "run", "report", "t2i"),
    "config": ("t2i", "models", "run", "train", "sampling", "search", "report"),
    "sampling": ("metrics", "search", "run", "report", "t2i", "train"),
    "metrics": ("models", "sampling", "guidance", "search", "run", "report", "t2i", "train"),
    "t2i": ("sampling", "search", "run", "report", "commands"),
}
EXEMPT: set[str] = set()  # files allowed to break the rules (none since the FLOP models moved into models/)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("sgbench", *path.relative_to(ROOT).parent.parts))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from sgbench import t2i`
    return out


def violations(package: str, forbidden) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in EXEMPT:
            continue
        for mod in sorted(imported_modules(path)):
            parts = mod.split(".")
            if parts[0] == "sgbench" and len(parts) > 1 and parts[1] in forbidden:
                bad.append(f"sgbench/{rel} imports {mod}")
    return bad


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_no_layer_above(package):
    assert violations(package, RULES[package]) == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "sgbench" / "data"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from sgbench.train.config import from_dict\n"
                              "from ..t2i import geneval\nfrom sgbench import run\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "sgbench")
    assert violations("data", RULES["data"]) == [
        "sgbench/data/x.py imports sgbench.run", "sgbench/data/x.py imports sgbench.t2i",
        "sgbench/data/x.py imports sgbench.t2i.geneval", "sgbench/data/x.py imports sgbench.train.config",
        "sgbench/data/x.py imports sgbench.train.config.from_dict"]


def test_metric_registry_and_config_load_without_torch_or_t2i():
    code = ("import sys, sgbench.config, sgbench.metrics.registry, sgbench.report.metrics; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('sgbench.t2i', 'sgbench.models'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
