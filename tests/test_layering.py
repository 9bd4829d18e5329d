"""The layering of docs/design.md, read from the imports of every module (those inside functions
and relative ones included).

    models  ->  guidance + sampling  ->  metrics  ->  search  ->  run  ->  report

models and guidance import nothing above them (an allow-list); data, config, sampling, metrics
and t2i never import the packages listed for them (metrics sees costs and features, not networks
or rules); the guidance vocabulary, the suite schema and the metric registry import no torch.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "sgbench"

# package -> the only sgbench packages it may import (besides itself and sgbench.errors)
ALLOWED = {"models": (), "guidance": ("models",)}
# package -> sgbench packages it must never import
FORBIDDEN = {
    "data": ("train", "models", "sampling", "guidance", "metrics", "search", "run", "report", "t2i"),
    "config": ("t2i", "models", "run", "train", "sampling", "search", "report"),
    "sampling": ("metrics", "search", "run", "report", "t2i", "train"),
    "metrics": ("models", "sampling", "guidance", "search", "run", "report", "t2i", "train"),
    "t2i": ("sampling", "search", "run", "report", "commands"),
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
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


def _breaks(package: str, target: str) -> bool:
    if target in (package, "errors"):
        return False
    if package in ALLOWED:
        return target not in ALLOWED[package]
    return target in FORBIDDEN.get(package, ())


def violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        for mod in sorted(imported_modules(path)):
            parts = mod.split(".")
            if parts[0] == "sgbench" and len(parts) > 1 and _breaks(package, parts[1]):
                bad.append(f"sgbench/{rel} imports {mod}")
    return bad


@pytest.mark.parametrize("package", sorted({*ALLOWED, *FORBIDDEN}))
def test_no_module_imports_a_layer_above_it(package):
    assert violations(package) == []


def test_the_checker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "sgbench" / "data"
    pkg.mkdir(parents=True)
    (pkg / "x.py").write_text("def f():\n    from sgbench.train.config import from_dict\n"
                              "from ..t2i import geneval\nfrom sgbench import run\n")
    (tmp_path / "sgbench" / "models").mkdir()
    (tmp_path / "sgbench" / "models" / "y.py").write_text("import sgbench.errors\nfrom ..guidance import rules\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path / "sgbench")
    assert violations("data") == [
        "sgbench/data/x.py imports sgbench.run", "sgbench/data/x.py imports sgbench.t2i",
        "sgbench/data/x.py imports sgbench.t2i.geneval", "sgbench/data/x.py imports sgbench.train.config",
        "sgbench/data/x.py imports sgbench.train.config.from_dict"]
    assert violations("models") == ["sgbench/models/y.py imports sgbench.guidance",
                                    "sgbench/models/y.py imports sgbench.guidance.rules"]


@pytest.mark.parametrize("code, expected", [
    ("import sgbench.guidance.vocabulary, sgbench.config.loader, sgbench.commands.guidance_args, sgbench.cli; "
     "sgbench.cli.build_parser()", "[]"),
    ("import sgbench.config, sgbench.metrics.registry, sgbench.report.metrics", "[]"),
])
def test_the_vocabulary_schema_cli_and_metric_registry_load_without_torch_models_or_t2i(code, expected):
    probe = (f"import sys; {code}; "
             "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith(('sgbench.t2i', 'sgbench.models'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected


def test_method_names_are_spelled_in_at_most_two_modules():
    # the vocabulary, and the synthetic trials.csv the report's tests and demo use
    names = {"cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg"}  # 'none' is also an ordinary word
    spelled = set()
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.add(path.relative_to(ROOT).as_posix())
    assert spelled == {"guidance/vocabulary.py", "report/synthetic.py"}
