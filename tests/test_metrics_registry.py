"""The metric registry: one declaration per metric read by the suite schema, the accumulators,
the reports and the gate; benchmarks declare their own columns; keys spelled in 2 modules."""

import ast
from pathlib import Path

import pytest

from sgbench.config.typed import from_dict
from sgbench.errors import UserError
from sgbench.metrics import registry
from sgbench.metrics.benchmarks import BENCHMARKS, GENEVAL_TAGS, HPSV3_CATEGORIES
from sgbench.report import metrics as report_metrics

ROOT = Path(__file__).resolve().parents[1] / "sgbench"


def test_each_metric_knows_its_facts():
    fid, is_, acc = registry.get("fid"), registry.get("is"), registry.get("class_acc")
    assert (fid.display, fid.higher_is_better, fid.provider, fid.format_spec()) == ("FID", False, "inception", ".2f")
    assert (is_.display, is_.title, is_.higher_is_better, is_.format_spec()) == ("IS", "Inception Score", True, ".1f")
    assert (acc.display, acc.format_spec()) == ("Acc.", ".3f")
    fd = registry.get("fd_someextractor")  # a family: any extractor's name
    assert (fd.display, fd.higher_is_better, fd.provider) == ("FD_someextractor", False, "someextractor")
    fd = registry.get("fd_dinov2")  # registered by name: edm2's spelling
    assert (fd.display, fd.higher_is_better, fd.provider) == ("FD_DINOv2", False, "dinov2")
    assert registry.get("gflops").format_spec(5.0) == ".3g" and registry.get("gflops").format_spec(118.6) == ".1f"
    assert registry.is_cost("gflops_attn") and not registry.is_quality("gflops_attn")
    assert registry.get("hpsv3_natural_scenery").display == "Natural Scenery"
    assert registry.get("geneval_color_attr").display == "Color attribution"  # paper Table 5
    # standard-error companions and setting columns are not metrics
    for column in ("fid_se", "precision_classifier_se", "geneval_counting_se", "omega", "seed", "fd_"):
        assert registry.lookup(column) is None and not report_metrics.is_metric(column)
    assert registry.is_se_column("recall_classifier_se") and not registry.is_se_column("recall_classifier")


def test_direction_has_one_flag_only():
    sources = "\n".join(p.read_text() for p in ROOT.rglob("*.py"))
    assert "lower_is_better" not in sources
    assert not hasattr(registry.Metric, "lower_is_better")


def test_providers_columns():
    assert registry.provider_metrics("inception") == ("fid", "sfid", "is", "precision", "recall")
    assert registry.provider_metrics("dinov2") == ("fd_dinov2", "precision_dinov2", "recall_dinov2")  # no logits
    assert registry.provider_metrics("classifier") == ("fd_classifier", "precision_classifier", "recall_classifier",
                                                       "class_acc")
    assert registry.get("fd_dinov2").display == "FD_DINOv2" and registry.get("fd_dinov2").headline
    assert registry.provider_metrics("geneval") == ("geneval", *(f"geneval_{t}" for t in GENEVAL_TAGS))
    assert registry.provider_metrics("hpsv3")[:3] == ("hpsv3", "hpsv3_characters", "hpsv3_arts")
    assert {b.scorer for b in BENCHMARKS.values()} == {"geneval", "hpsv3"}


def test_benchmark_scorers_fill_the_columns_they_declare():
    from sgbench.t2i.geneval import summary_columns as geneval_columns
    from sgbench.t2i.hpsv3_client import aggregate, summary_columns as hpsv3_columns

    tags = {t: 0.5 for t in GENEVAL_TAGS}
    assert tuple(geneval_columns({"overall": 0.5, "tags": tags})) == registry.provider_metrics("geneval")
    cols = hpsv3_columns(aggregate([1.0] * len(HPSV3_CATEGORIES), HPSV3_CATEGORIES))
    assert tuple(cols) == registry.provider_metrics("hpsv3")


def test_the_suite_schema_validates_keys_and_directions_from_the_registry(tmp_path):
    from sgbench.config.schema import Suite

    base = {"name": "s", "model": {"checkpoint": "m.pt"}, "methods": [{"name": "u", "method": "none"}],
            "metrics": {"reference": "ref.npz", "extractor": "dinov2"},
            "search": {"space": {"gamma_weak": [0.5]}, "objectives": ["recall_dinov2", "gflops"],
                       "sampler": "multi-objective", "budget": 2}}
    suite = from_dict(Suite, base, "suite")
    assert suite.metrics.metric_keys == registry.provider_metrics("dinov2")
    assert suite.directions == ["maximize", "minimize"]
    bad = {**base, "metrics": {**base["metrics"], "keys": ["fid"]}}
    with pytest.raises(UserError, match=r"suite\.metrics\.keys\[0\]: 'dinov2' gives fd_dinov2, .* not 'fid'"):
        from_dict(Suite, bad, "suite")
    t2i = {"name": "t", "model": {"checkpoint": "m.pt"}, "methods": [{"name": "u", "method": "none"}],
           "benchmark": {"kind": "shapes_geneval"}, "metrics": {"keys": ["geneval", "geneval_counting"]}}
    assert from_dict(Suite, t2i, "suite").metrics.metric_keys == ("geneval", "geneval_counting")
    with pytest.raises(UserError, match=r"suite\.benchmark\.kind: unknown benchmark 'parti'; known: geneval"):
        from_dict(Suite, {**t2i, "benchmark": {"kind": "parti"}}, "suite")


def test_report_and_gate_follow_a_newly_registered_family(tmp_path):
    fam = registry.register_family("testonly_", "T_{}", True, ".4f", provider="testonly")
    assert report_metrics.display_name("testonly_x") == "T_x" and report_metrics.arrow("testonly_x") == "↑"
    assert report_metrics.number_format("testonly_x") == ".4f"
    assert report_metrics.metric_order(["gflops", "testonly_x", "fid"]) == ["fid", "testonly_x"]
    from sgbench.report.gate import compare_runs, parse_tolerances
    from sgbench.report.runs import load_run
    from sgbench.report.synthetic import write_run

    def run(name, value):
        row = {"trial_id": "t", "method": "none", "gamma_strong": 0.0, "gamma_weak": 0.0, "omega": 1.0,
               "seed": 0, fam.key("x"): value, "status": "complete"}
        return load_run(write_run(tmp_path / name, [row], grids=False))

    # higher is better: a drop is a regression, a rise is not
    assert not compare_runs(run("a", 0.5), run("b", 0.9), parse_tolerances("0")).ok
    assert compare_runs(run("c", 0.9), run("d", 0.5), parse_tolerances("0")).ok
    with pytest.raises(ValueError, match="already registered"):
        registry.register_family("testonly_", "T_{}", True)


def _string_constants(path: Path) -> set[str]:
    """String literals and f-string literal parts of a module, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs}


def test_metric_keys_are_spelled_out_in_two_modules():
    """Quality metric keys and family prefixes appear as string literals only where they are
    declared. Benchmark names ('geneval', 'hpsv3') are also benchmark kinds and subcommands,
    so the names of registered benchmarks and scorers are not counted."""
    names = set(BENCHMARKS) | {b.scorer for b in BENCHMARKS.values()}
    keys = {k for k, m in registry._METRICS.items() if not m.cost} | set(registry._FAMILIES)
    keys -= names | {"testonly_"}
    where = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if _string_constants(p) & keys}
    assert where == {"metrics/registry.py", "metrics/benchmarks.py"}
