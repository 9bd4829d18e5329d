"""The layering of docs/design.md, read from the imports of every module (lazy ones included).

    models  ->  guidance + sampling  ->  metrics  ->  search  ->  run  ->  report

models and guidance import nothing above them; metrics never imports models, sampling or
guidance (it sees costs and features, not networks or rules); the guidance vocabulary and the
suite schema import no torch.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "sgbench"

# package -> (the sgbench packages it may import besides itself and sgbench.errors) or, for metrics,
# the ones it must never import
ALLOWED = {"models": set(), "guidance": {"models"}}
FORBIDDEN = {"metrics": {"models", "sampling", "guidance"}}
# Imports the metrics branch removes (#14 item 4: metrics never imports models); each entry must
# still exist, so the list shrinks to empty instead of going stale.
PENDING: set[tuple[str, str]] = set()  # known violations being removed (none left)


def sgbench_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return {m for m in out if m.startswith("sgbench.")}


def violations(package: str) -> set[tuple[str, str]]:
    bad = set()
    for path in sorted((PKG / package).rglob("*.py")):
        for module in sgbench_imports(path):
            target = module.split(".")[1]
            if target in (package, "errors"):
                continue
            if target in FORBIDDEN.get(package, ()) or (package in ALLOWED and target not in ALLOWED[package]):
                bad.add((path.relative_to(PKG).as_posix(), module))
    return bad


@pytest.mark.parametrize("package", ["models", "guidance", "metrics"])
def test_no_module_imports_a_layer_above_it(package):
    found = violations(package)
    pending = {v for v in PENDING if v[0].startswith(package + "/")}
    assert found - pending == set(), f"{package} imports a layer above it: {sorted(found - pending)}"
    assert pending <= found, f"fixed (remove from PENDING): {sorted(pending - found)}"


def test_the_vocabulary_and_the_suite_schema_import_no_torch():
    code = ("import sys; import sgbench.guidance.vocabulary, sgbench.config.loader, sgbench.commands.guidance_args; "
            "import sgbench.cli; sgbench.cli.build_parser(); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_method_names_are_spelled_in_at_most_two_modules():
    # the vocabulary, and the synthetic trials.csv the report's tests and demo use
    names = {"cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg"}  # 'none' is also an ordinary word
    spelled = set()
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                spelled.add(path.relative_to(PKG).as_posix())
    assert spelled == {"guidance/vocabulary.py", "report/synthetic.py"}
