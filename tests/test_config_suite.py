"""Suite YAML -> typed config: valid suites load, bad ones are one line with the key path, exit 2."""

from pathlib import Path

import pytest
import yaml

from sgbench.cli import main
from sgbench.config import load_suite
from sgbench.config.typed import from_dict
from sgbench.errors import UserError

SUITES = Path(__file__).resolve().parents[1] / "suites"


def base_suite() -> dict:
    return {
        "name": "t",
        "model": {"checkpoint": "model.safetensors"},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5}],
        "search": {"space": {"gamma_strong": [0.0, 0.5], "gamma_weak": [0.5, 0.9], "omega": [1.3, 1.5]}},
        "metrics": {"extractor": "classifier", "weights": "clf.safetensors", "reference": {"dataset": "shapes", "n": 64},
                    "n_samples": 16},
    }


def write(tmp_path, data, files=("model.safetensors", "clf.safetensors")) -> Path:
    for f in files:
        (tmp_path / f).write_bytes(b"x")
    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return p


def cli_error(path, capsys) -> str:
    code = main(["run", str(path), "--out", str(path.parent / "results")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert not (path.parent / "results").exists()  # failed before creating anything
    return lines[0]


def test_valid_suite_loads_with_defaults_and_resolved_paths(tmp_path):
    loaded = load_suite(write(tmp_path, base_suite()))
    s = loaded.suite
    assert s.sampler.solver == "euler" and s.sampler.steps == 2
    assert s.search.sampler == "grid" and s.search.objective == "fd_classifier"
    assert s.directions == ["minimize"]
    assert s.metrics.metric_keys == ("fd_classifier", "precision_classifier", "recall_classifier", "class_acc")
    assert loaded.files.checkpoint == tmp_path / "model.safetensors"
    assert [m.schedule for m in s.methods] == ["", ""]
    snap = loaded.snapshot()
    assert snap["search"]["space"]["omega"] == [1.3, 1.5] and snap["report"]["enabled"] is True


def test_a_loaded_suite_is_frozen_and_changes_are_derived_and_checked_again(tmp_path):
    import dataclasses

    loaded = load_suite(write(tmp_path, base_suite()))
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.suite.sampler.steps = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.suite.metrics.n_samples = 3
    assert isinstance(loaded.suite.seeds, tuple) and isinstance(loaded.suite.methods, tuple)
    (tmp_path / "other.safetensors").write_bytes(b"x")
    derived = loaded.derive({"suite.sampler.steps": 3, "suite.model.checkpoint": "other.safetensors"})
    assert derived.suite.sampler.steps == 3 and loaded.suite.sampler.steps == 2  # a new suite; the old one kept
    assert derived.files.checkpoint == tmp_path / "other.safetensors"  # its files resolved again
    assert [r.key for r in derived.refs] == [r.key for r in loaded.refs]
    # the check a loaded suite passes, run again: a change it refuses is the same one-line error
    with pytest.raises(UserError, match=r"^suite\.sampler\.steps: must be >= 1, got 0$"):
        loaded.derive({"suite.sampler.steps": 0})
    with pytest.raises(UserError, match=r"^suite\.search\.pruning\.fidelities\[0\]: must be < metrics\.n_samples"):
        loaded.derive({"suite.search.pruning": {"fidelities": [16]}})
    # what the check filled in (objective, n_samples) round-trips: deriving nothing changes nothing
    assert loaded.derive({}).suite == loaded.suite and loaded.derive({}).snapshot() == loaded.snapshot()


def mutate(tmp_path, fn):
    data = base_suite()
    fn(data)
    return write(tmp_path, data)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: d["search"]["space"]["omega"].append(-1), "suite.search.space.omega[2]: must be >= 0"),
        (lambda d: d["search"]["space"]["omega"].append(50), "suite.search.space.omega[2]: must be <= 20"),
        (lambda d: d["search"].update(spcae={}), "suite.search.spcae: unknown key (did you mean 'space'?)"),
        (lambda d: d["sampler"].update(steps="many"), "suite.sampler.steps: expected an integer, got 'many'"),
        (lambda d: d["methods"].append({"name": "sg", "method": "sg", "omega": 2, "gamma_strong": 0.9, "gamma_weak": 0.5}),
         "suite.methods[2]: sg needs gamma_strong < gamma_weak (the weak branch is the sparser one), got 0.9 >= 0.5"),
        (lambda d: d["methods"].append({"name": "x", "method": "sg", "gamma_weak": "cosine:0.6:1.2"}),
         "suite.methods[2].gamma_weak: sparsity rate must be in [0, 1), got 1.2"),
        (lambda d: d["methods"].append({"name": "ag", "method": "ag", "omega": 2}),
         "suite.methods[2].method: ag needs model.weak_checkpoint"),
        (lambda d: d["methods"][1].update(method="cfgg"),
         "suite.methods[1].method: unknown guidance method 'cfgg'; known: none, cfg, sg, cfg+sg, ag, ag+sg, icg "
         "(did you mean 'cfg'?)"),
        (lambda d: d["methods"][1].update(omega=50), "suite.methods[1].omega: must be <= 20"),
        (lambda d: d["methods"][1].update(interval=[0.5, 0.2]), "suite.methods[1].interval: must satisfy 0 <= t_lo < t_hi"),
        (lambda d: d["methods"][1].update(interval=[0.5]), "suite.methods[1].interval: expected a list of 2 values"),
        (lambda d: d["methods"][0].update(interval=[0.2, 0.5]), "suite.methods[0].interval: needs a guided method"),
        (lambda d: d["methods"][1].pop("name"), "suite.methods[1].name: required"),
        (lambda d: d["search"].update(method="cfg"), "suite.search.method: must be one of sg, cfg+sg, ag+sg"),
        (lambda d: d["search"].update(method="sgg"), "suite.search.method: unknown guidance method 'sgg'"),
        (lambda d: d["search"].update(interval=[0.3, 1.5]), "suite.search.interval: must satisfy 0 <= t_lo < t_hi <= 1"),
        (lambda d: d["search"]["space"].update(gamma_weak=[0.5, 1.0]),
         "suite.search.space.gamma_weak[1]: sparsity rate must be in [0, 1), got 1"),
        (lambda d: d["metrics"].update(attention_flops=False),
         "suite.metrics.attention_flops: removed: every trial records both GFLOPs counts, gflops"),
        (lambda d: d["methods"][1].update(gamma_weak=0.5), "suite.methods[1].gamma_weak: applies only to sg"),
        (lambda d: d["methods"].append({"name": "s", "method": "cfg+sg", "omega": 2}),
         "suite.methods[2].gamma_weak: required for cfg+sg"),
        (lambda d: d["search"].update(sampler="tpe"), "suite.search.budget: required for sampler 'tpe'"),
        (lambda d: d["search"].update(pruning={"fidelities": [8, 16]}),
         "suite.search.pruning.fidelities[1]: must be < metrics.n_samples (16)"),
        (lambda d: d["search"].update(objective="fid"), "suite.search.objective: unknown metric 'fid'"),
        (lambda d: d["search"]["space"].update(gamma_strong=[0.9], gamma_weak=[0.5]),
         "suite.search.space: no point of the space has gamma_strong < gamma_weak"),
        (lambda d: d.pop("metrics"), "suite.metrics.reference: required"),
        (lambda d: d.update(threads=-1), "suite.threads: must be >= 0"),
        (lambda d: d.update(report={"options": {"bogus": 1}}), "suite.report.options: got an unexpected keyword"),
        (lambda d: d["search"].update(storage="redis://x"), "suite.search.storage: expected an Optuna RDB URL"),
    ],
)
def test_bad_suites_give_one_line_with_key_path_and_exit_2(tmp_path, capsys, change, expected):
    line = cli_error(mutate(tmp_path, change), capsys)
    assert line.startswith("sgbench run: error: ")
    assert expected in line


def test_invalid_yaml_names_the_line(tmp_path, capsys):
    line = cli_error(write(tmp_path, "name: t\nmodel: [unclosed\n"), capsys)
    assert "invalid YAML at line" in line


def test_missing_files_are_all_listed_with_how_to_supply_them(tmp_path, capsys):
    data = base_suite()
    data["model"]["vae"] = "vae_dir"
    line = cli_error(write(tmp_path, data, files=()), capsys)
    assert "3 files are missing" in line
    for key in ("suite.model.checkpoint", "suite.model.vae", "suite.metrics.weights"):
        assert key in line
    assert "AutoencoderKL" in line and "sgbench train" in line


def test_union_errors_report_the_matching_shape():
    from sgbench.config.schema import SpaceConfig

    with pytest.raises(UserError, match=r"^x\.omega\[1\]: expected a number, got 'a'$"):
        from_dict(SpaceConfig, {"omega": [1.0, "a"]}, "x")
    with pytest.raises(UserError, match=r"^x\.omega: required key missing|^x\.omega\.low: required key missing"):
        from_dict(SpaceConfig, {"omega": {"high": 2.0}}, "x")


def test_env_vars_and_package_prefix_in_paths(tmp_path, monkeypatch):
    from sgbench.config.files import resolve_path

    monkeypatch.setenv("SGB_TEST_DIR", str(tmp_path))
    assert resolve_path("${SGB_TEST_DIR}/a.pt", Path("/nowhere")) == tmp_path / "a.pt"
    assert resolve_path("${SGB_UNSET_VAR:-/d}/a.pt", Path("/x")) == Path("/d/a.pt")
    assert resolve_path("sgbench:assets/q.safetensors", Path("/x")).parts[-3:] == ("sgbench", "assets", "q.safetensors")
    with pytest.raises(UserError, match="SGB_UNSET_VAR is not set"):
        resolve_path("${SGB_UNSET_VAR}/a.pt", Path("/x"))


@pytest.mark.parametrize("name", ["imagenet_grid", "imagenet_table2", "masking_grid", "masking_grid_maskdit_edm"])
def test_imagenet_suites_are_valid_and_fail_fast_listing_every_missing_file(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SGBENCH_DATA", str(tmp_path / "nothing-here"))
    path = SUITES / f"{name}.yaml"
    load_suite(path, check_files=False)  # structure and values are valid
    code = main(["run", str(path), "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "files are missing" in err and "suite.model.checkpoint" in err and "suite.metrics.weights" in err
    assert "suite.metrics.reference.path" in err
    assert not (tmp_path / "results").exists()


def test_quickstart_suite_is_valid_and_its_shipped_files_exist():
    loaded = load_suite(SUITES / "quickstart.yaml")
    s = loaded.suite
    assert {m.method for m in s.methods} >= {"none", "cfg"}
    assert s.search.method == "sg" and s.search.sampler == "grid"
    assert s.metrics.extractor == "classifier" and s.metrics.reference.dataset == "shapes"
    assert s.workers == 2 and s.threads == 1  # both cores of the 2-core CPU it is made for, one thread each


def test_text_to_image_suites_are_checked_like_the_others(tmp_path, capsys):
    t2i = {"name": "t", "model": {"checkpoint": "model.safetensors"}, "methods": [{"name": "u", "method": "none"}]}
    line = cli_error(write(tmp_path, {**t2i, "benchmark": {"kind": "geneval"}}), capsys)
    assert "suite.benchmark.metadata: required for kind geneval" in line
    line = cli_error(write(tmp_path, {**t2i, "benchmark": {"kind": "geneval", "metadata": "m.jsonl",
                                                          "detector_config": "c.py", "detector_checkpoint": "d.pth",
                                                          "clip_weights": "clip.pt"}}), capsys)
    for key in ("metadata", "detector_config", "detector_checkpoint", "clip_weights"):
        assert f"suite.benchmark.{key}" in line  # every missing file, at once
    line = cli_error(write(tmp_path, {**t2i, "benchmark": {"kind": "shapes_geneval"},
                                      "metrics": {"reference": {"dataset": "shapes"}}}), capsys)
    assert "suite.metrics.reference" in line
    line = cli_error(write(tmp_path, {**t2i, "benchmark": {"kind": "shapes_geneval"},
                                      "metrics": {"keys": ["fid"]}}), capsys)
    assert "suite.metrics.keys[0]" in line and "geneval_counting" in line
    loaded = load_suite(write(tmp_path, {**t2i, "benchmark": {"kind": "hpsv3", "prompts": "p.jsonl",
                                                             "hps_python": "py", "hps_base_model": "q",
                                                             "hps_checkpoint": "h"}}), check_files=False)
    assert loaded.suite.metrics.extractor == "hpsv3" and loaded.suite.directions == ["maximize"]
    assert loaded.suite.metrics.metric_keys[:2] == ("hpsv3", "hpsv3_characters")
    line = cli_error(write(tmp_path, {k: v for k, v in base_suite().items() if k != "metrics"}), capsys)
    assert "suite.metrics.reference" in line
