"""A corpus of bad and hostile inputs (issue 13's classes), each against a copy of a directory that
holds a finished run: exit code 2 (or the documented one), exactly one line on stderr and no
traceback, no file of the earlier run changed, nothing new left behind (no half-made run
directory, no report, no export), no code executed from a file, and credentials never printed.
"""

import errno
import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest
import torch
import yaml

from sgbench.cli import main

SECRET = "s3cretPw0rd"


class Evil:
    """Unpickling this creates the file MARKER (a stand-in for any code a pickle can run)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A directory with a tiny suite, a finished run of it, a tiny training run and its files."""
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    d = tmp_path_factory.mktemp("base")
    torch.manual_seed(0)
    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False, routes=["0-1"])
    model = DiT(cfg)
    save_sgbench_safetensors(d / "model.safetensors", model, parametrization="velocity")
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, d / "plain.pt")
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), d / "clf.safetensors")
    suite = {
        "name": "tiny", "device": "cpu", "threads": 1,
        "model": {"checkpoint": "model.safetensors"},
        "sampler": {"steps": 2, "batch_size": 4},
        "methods": [{"name": "unguided", "method": "none"}, {"name": "cfg", "method": "cfg", "omega": 1.5}],
        "search": {"space": {"gamma_strong": [0.0], "gamma_weak": [0.5, 0.75], "omega": [2.0]}},
        "metrics": {"extractor": "classifier", "weights": "clf.safetensors", "reference": {"dataset": "shapes", "n": 16},
                    "n_samples": 8, "batch_size": 8},
        "report": {"sample_grid": 4},
    }
    (d / "suite.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    assert main(["run", str(d / "suite.yaml"), "--out", str(d / "results"), "--no-progress", "--no-report"]) == 0
    train = {
        "task": "class_image",
        "data": {"name": "shapes", "n_train": 32, "n_heldout": 8},
        "model": {"patch_size": 8, "hidden_size": 16, "depth": 1, "num_heads": 2, "routes": ["0-0"]},
        "train": {"steps": 2, "batch_size": 8, "log_every": 1, "ckpt_every": 1, "keep_every": 1, "precision": "fp32",
                  "ema_decay": 0.9},
        "output": {"dir": "trainrun", "export": "model.safetensors"},
    }
    (d / "train.yaml").write_text(yaml.safe_dump(train, sort_keys=False))
    cwd = os.getcwd()
    os.chdir(d)
    try:
        assert main(["train", "train.yaml", "--no-progress"]) == 0
    finally:
        os.chdir(cwd)
    rng = np.random.default_rng(0)
    np.savez(d / "samples.npz", arr_0=rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8))
    return d


def tree_digest(root: Path) -> dict:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def base_suite(d: Path) -> dict:
    return yaml.safe_load((d / "suite.yaml").read_text())


def write_suite(d: Path, change: Callable[[dict], None], name: str = "s.yaml") -> Path:
    data = base_suite(d)
    change(data)
    p = d / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def run_args(suite: Path, d: Path, *extra) -> list:
    return ["run", str(suite), "--out", str(d / "results"), "--no-progress", *extra]


def suite_case(change, *extra):
    return lambda d: run_args(write_suite(d, change), d, *extra)


def text_case(text: str, *extra):
    def prepare(d):
        p = d / "s.yaml"
        p.write_text(text)
        return run_args(p, d, *extra)

    return prepare


def resume_case(mutate_run: Callable[[Path], None], change=None):
    def prepare(d):
        mutate_run(d / "results" / "tiny")
        suite = write_suite(d, change or (lambda s: None))
        return run_args(suite, d, "--resume", "--name", "tiny")

    return prepare


def set_in(path: str, value):
    def change(s):
        node = s
        keys = path.split(".")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value

    return change


def evil_file(d: Path, name: str, payload) -> Path:
    torch.save(payload(Evil(d / "MARKER")), d / name)
    return d / name


def meta_checkpoint(d: Path, **config) -> Path:
    """The tiny model's tensors with metadata that declares another architecture."""
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(d / "model.safetensors"), "pt") as f:
        meta = json.loads(f.metadata()["sgbench"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["config"].update(config)
    save_file(tensors, str(d / "huge.safetensors"), metadata={"sgbench": json.dumps(meta)})
    return d / "huge.safetensors"


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines)


def bomb_suite(d: Path) -> list:
    text = (d / "suite.yaml").read_text().replace("name: tiny", "name: tiny\n" + "description: &d x", 1)
    text += "model_options_bomb: 1\n"
    bomb = alias_bomb().replace("\n", "\n    ")
    text = text.replace("model:\n", f"model:\n  options:\n    {bomb}\n", 1).replace("model_options_bomb: 1\n", "")
    (d / "s.yaml").write_text(text)
    return run_args(d / "s.yaml", d)


def train_case(change=None, *extra):
    def prepare(d):
        raw = yaml.safe_load((d / "train.yaml").read_text())
        raw["output"]["dir"] = str(d / "trainrun")
        if change:
            change(raw, d)
        (d / "t.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        return ["train", str(d / "t.yaml"), "--no-progress", *[e.format(d=d) for e in extra]]

    return prepare


@dataclass
class Case:
    id: str
    prepare: Callable[[Path], list]
    code: int = 2
    expect: str = ""  # a piece of the error line
    patch: Optional[Callable] = None  # (monkeypatch, d) -> None: simulate a full disk, a read-only directory
    absent: tuple = field(default_factory=tuple)  # strings that must not appear (credentials)


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def full_disk(mp, d):
    from sgbench.run import rundir

    mp.setattr(rundir, "write_atomic", _enospc)


def read_only_run(mp, d):
    real = os.access
    run = str(d / "results" / "tiny")
    mp.setattr(os, "access", lambda p, m, *a, **k: False if str(p).startswith(run) and m & os.W_OK else real(p, m, *a, **k))


def nan_stats(d: Path) -> Path:
    np.savez(d / "nan.npz", mu=np.full(2048, np.nan), sigma=np.eye(2048), mu_s=np.zeros(2023), sigma_s=np.eye(2023))
    return d / "nan.npz"


def inception_weights(d: Path) -> Path:
    from unittest import mock

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None), mock.patch(
        "torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {}
    ):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, d / "incep.pth")
    return d / "incep.pth"


def unrelated(d: Path, name: str) -> Path:
    p = d / name
    p.mkdir()
    (p / "thesis.tex").write_text("years of work")
    return p


CASES = [
    # ---- 1. code execution from files ----------------------------------------------------------
    Case("pickle-checkpoint", lambda d: run_args(write_suite(d, set_in("model.checkpoint", str(evil_file(
        d, "evil.pt", lambda e: {"model": torch.load(d / "plain.pt"), "extra": e})))), d), expect="does not unpickle"),
    Case("pickle-plain-object", lambda d: run_args(write_suite(d, set_in("model.checkpoint", str(evil_file(
        d, "evil.pt", lambda e: e)))), d), expect="open besides tensors"),
    Case("pickle-weak-checkpoint", lambda d: run_args(write_suite(d, lambda s: (set_in("model.weak_checkpoint", str(
        evil_file(d, "evil.pt", lambda e: {"model": torch.load(d / "plain.pt"), "x": e})))(s),
        s["methods"].append({"name": "ag", "method": "ag", "omega": 2.0}))), d), expect="does not unpickle"),
    Case("pickle-inception-weights-suite", lambda d: run_args(write_suite(d, lambda s: s["metrics"].update(
        extractor="inception", keys=None, weights=str(evil_file(d, "w.pth", lambda e: {"w": e})))), d),
        expect="does not unpickle"),
    Case("pickle-inception-weights-evaluate", lambda d: ["evaluate", str(d / "samples.npz"), "--ref", str(d / "samples.npz"),
         "--inception-weights", str(evil_file(d, "w.pth", lambda e: {"w": e}))], expect="does not unpickle"),
    Case("pickle-training-resume", train_case(lambda raw, d: (raw["output"].update(export=""), evil_file(
        d, "trainrun/checkpoints/latest.pt", lambda e: {"model": {}, "opt": {}, "step": 1, "x": e}))),
        expect="does not unpickle"),
    Case("pickle-export-step", train_case(lambda raw, d: evil_file(
        d, "trainrun/checkpoints/step_0000001.pt", lambda e: {"model": {}, "opt": {}, "step": 1, "x": e}),
        "--export-step", "1", "{d}/early.safetensors"), expect="does not unpickle"),
    Case("pickle-reference-npz", lambda d: (np.save(d / "arr_0.npy", np.array([Evil(d / "MARKER")], dtype=object),
                                                    allow_pickle=True),
                                            __import__("zipfile").ZipFile(d / "ref.npz", "w").write(d / "arr_0.npy", "arr_0.npy"),
                                            run_args(write_suite(d, set_in("metrics.reference", str(d / "ref.npz"))), d))[-1]),
    # ---- 2. unbounded sizes ---------------------------------------------------------------------
    Case("steps-huge", suite_case(set_in("sampler.steps", 10**12)), expect="suite.sampler.steps: must be <="),
    Case("steps-string-float", suite_case(set_in("sampler.steps", "1e12")), expect="suite.sampler.steps"),
    Case("n-samples-huge", suite_case(set_in("metrics.n_samples", 10**15)), expect="suite.metrics.n_samples"),
    Case("batch-size-huge", suite_case(set_in("sampler.batch_size", 10**9)), expect="suite.sampler.batch_size"),
    Case("metric-batch-zero", suite_case(set_in("metrics.batch_size", 0)), expect="suite.metrics.batch_size: must be >= 1"),
    Case("sampler-batch-zero", suite_case(set_in("sampler.batch_size", 0)), expect="suite.sampler.batch_size"),
    Case("seeds-too-many", suite_case(set_in("seeds", list(range(2000)))), expect="suite.seeds"),
    Case("seed-negative", suite_case(set_in("seeds", [-1])), expect="suite.seeds[0]"),
    Case("budget-huge", suite_case(lambda s: s["search"].update(sampler="tpe", budget=10**9)), expect="suite.search.budget"),
    Case("input-size-option-huge", suite_case(set_in("model.options", {"input_size": 10**6})),
         expect="suite.model.options.input_size"),
    Case("reference-n-huge", suite_case(set_in("metrics.reference", {"dataset": "shapes", "n": 10**12})),
         expect="suite.metrics.reference.n"),
    Case("threads-huge", suite_case(set_in("threads", 10**6)), expect="suite.threads"),
    Case("sample-grid-huge", suite_case(set_in("report.sample_grid", 10**9)), expect="suite.report.sample_grid"),
    Case("alias-bomb", bomb_suite, expect="aliases"),
    Case("deep-nesting", text_case("name: tiny\ndescription: " + "[" * 3000 + "]" * 3000 + "\n"), expect="nested too deeply"),
    Case("suite-file-huge", text_case("name: tiny\n# " + "x" * (5 << 20) + "\n"), expect="the limit is"),
    Case("metadata-huge-width", lambda d: run_args(write_suite(d, set_in("model.checkpoint", str(meta_checkpoint(
        d, hidden_size=1_000_000)))), d), expect="does not fit"),
    Case("metadata-huge-depth", lambda d: run_args(write_suite(d, set_in("model.checkpoint", str(meta_checkpoint(
        d, depth=10**7)))), d), expect="does not fit its configuration"),
    Case("metadata-huge-input", lambda d: run_args(write_suite(d, set_in("model.checkpoint", str(meta_checkpoint(
        d, input_size=4096, patch_size=1)))), d), expect="does not fit"),
    Case("cli-sample-steps-huge", lambda d: ["sample", "--checkpoint", str(d / "model.safetensors"), "--num-samples", "4",
                                             "--out", str(d / "o.npz"), "--steps", "100000000000000000000"], expect="--steps"),
    Case("cli-flops-input-size-huge", lambda d: ["flops", "--arch", "SiT-XL/2", "--input-size", "1000000"],
         expect="--input-size"),
    Case("cli-max-trials-zero", lambda d: run_args(d / "suite.yaml", d, "--max-trials", "0"), expect="--max-trials"),
    Case("cli-train-steps-huge", train_case(None, "--steps", "10000000000000"), expect="--steps"),
    # ---- 3. paths -------------------------------------------------------------------------------
    Case("method-name-dotdot", suite_case(lambda s: s["methods"][0].update(name="../../evil")),
         expect="suite.methods[0].name"),
    Case("method-name-slash", suite_case(lambda s: s["methods"][1].update(name="a/b")), expect="suite.methods[1].name"),
    Case("method-name-hidden", suite_case(lambda s: s["methods"][1].update(name=".cfg")), expect="suite.methods[1].name"),
    Case("method-name-control", suite_case(lambda s: s["methods"][1].update(name="cfg\x07")), expect="suite.methods[1].name"),
    Case("method-name-too-long", suite_case(lambda s: s["methods"][1].update(name="m" * 300)), expect="at most 200 bytes"),
    Case("suite-name-too-long", suite_case(set_in("name", "n" * 300)), expect="suite.name"),
    Case("cli-name-dotdot", lambda d: run_args(d / "suite.yaml", d, "--name", "../escape"), expect="run name"),
    Case("cli-name-too-long", lambda d: run_args(d / "suite.yaml", d, "--name", "r" * 250), expect="run name"),
    Case("report-out-force-unrelated", lambda d: run_args(write_suite(d, set_in("report", {
        "out": str(unrelated(d, "mywork")), "options": {"force": True}})), d), expect="not an sgbench report"),
    Case("report-out-relative-to-suite", lambda d: ((d / "sub").mkdir(), unrelated(d / "sub", "holder"),
                                                    run_args(write_suite(d, lambda s: (
                                                        s.update(report={"out": "holder"}),
                                                        s["model"].update(checkpoint=str(d / "model.safetensors")),
                                                        s["metrics"].update(weights=str(d / "clf.safetensors"))),
                                                        "sub/s.yaml"), d))[-1],
         expect="sub/holder"),
    Case("report-out-in-package", suite_case(set_in("report", {"out": "sgbench:assets/report"})),
         expect="inside the installed sgbench package"),
    Case("out-is-a-file", lambda d: ((d / "afile").write_text("x"),
                                     ["run", str(d / "suite.yaml"), "--out", str(d / "afile"), "--no-progress"])[1],
         expect="not a directory"),
    Case("out-in-package", lambda d: ["run", str(d / "suite.yaml"), "--out", "sgbench:assets/results", "--no-progress"]
         if False else ["run", str(d / "suite.yaml"), "--out",
                        str(Path(__import__("sgbench").__file__).parent / "assets" / "results"), "--no-progress"],
         expect="inside the installed sgbench package"),
    Case("out-cannot-be-created", lambda d: ["run", str(d / "suite.yaml"), "--out", "/proc/sgbench-results",
                                             "--no-progress"], expect="cannot write"),
    Case("out-full-disk", lambda d: run_args(d / "suite.yaml", d), patch=full_disk, expect="No space left"),
    Case("resume-read-only-run", resume_case(lambda r: None), patch=read_only_run, expect="not writable"),
    Case("resume-corrupt-suite-yaml", resume_case(lambda r: (r / "suite.yaml").write_text("name: [unclosed\n")),
         expect="invalid YAML"),
    Case("resume-suite-yaml-not-mapping", resume_case(lambda r: (r / "suite.yaml").write_text("- a\n- b\n")),
         expect="not a suite snapshot"),
    Case("resume-corrupt-env-json", resume_case(lambda r: (r / "env.json").write_text("{not json")),
         expect="env.json"),
    Case("resume-changed-suite", resume_case(lambda r: None, set_in("metrics.n_samples", 16)),
         expect="suite differs"),
    Case("resume-missing-run", lambda d: run_args(d / "suite.yaml", d, "--resume", "--name", "nope"),
         expect="no run to resume"),
    Case("checkpoint-is-directory", suite_case(set_in("model.checkpoint", ".")), expect="suite.model.checkpoint"),
    Case("checkpoint-corrupt", lambda d: ((d / "bad.safetensors").write_bytes(b"\x00" * 64),
                                          run_args(write_suite(d, set_in("model.checkpoint", "bad.safetensors")), d))[1],
         expect="cannot read"),
    Case("reference-missing", suite_case(set_in("metrics.reference", "nope.npz")), expect="suite.metrics.reference.path"),
    Case("vae-is-a-file", suite_case(set_in("model.vae", "clf.safetensors")), expect="suite.model.vae"),
    # ---- 4. secrets -----------------------------------------------------------------------------
    Case("storage-password-unreachable", suite_case(set_in("search.storage",
         f"postgresql://bench:{SECRET}@127.0.0.1:1/sgbench")), expect="***", absent=(SECRET,)),
    Case("storage-password-bad-scheme", suite_case(set_in("search.storage", f"postgress://bench:{SECRET}@db/x")),
         expect="suite.search.storage", absent=(SECRET,)),
    Case("storage-unset-variable", suite_case(set_in("search.storage", "postgresql://u:${SGBENCH_NO_SUCH_VAR}@h/x")),
         expect="SGBENCH_NO_SUCH_VAR"),
    # ---- 6. checks before side effects ----------------------------------------------------------
    Case("checkpoint-does-not-fit-options", suite_case(set_in("model.options", {"num_classes": 7})), expect="records num_classes=10, but 7 was given"),
    Case("report-option-unknown", suite_case(set_in("report.options", {"bogus": 1})), expect="suite.report.options"),
    Case("extractor-unknown", suite_case(lambda s: s["metrics"].update(extractor="clip", keys=None)),
         expect="suite.metrics.extractor"),
    Case("shared-study-other-suite", lambda d: (
        main(run_args(write_suite(d, lambda s: s["search"].update(storage=f"sqlite:///{d / 'shared.db'}",
                                                                  study_name="shared"), "a.yaml"), d,
                      "--no-report", "--name", "first", "--max-trials", "1")),
        run_args(write_suite(d, lambda s: (s["search"].update(storage=f"sqlite:///{d / 'shared.db'}", study_name="shared"),
                                           s["metrics"].update(n_samples=16)), "b.yaml"), d))[1],
         expect="another suite"),
    # ---- 7. silent acceptance -------------------------------------------------------------------
    Case("reference-other-resolution", lambda d: (np.savez(d / "ref16.npz", arr_0=np.zeros((8, 16, 16, 3), np.uint8)),
                                                  run_args(write_suite(d, set_in("metrics.reference", "ref16.npz")), d))[1],
         expect="16 px, the samples 32 px"),
    Case("reference-nan-mean", lambda d: ["evaluate", str(d / "samples.npz"), "--ref", str(nan_stats(d)),
                                          "--inception-weights", str(inception_weights(d)), "--no-precision-recall"],
         expect="NaN"),
    Case("evaluate-batch-size-zero", lambda d: ["evaluate", str(d / "samples.npz"), "--ref", str(d / "samples.npz"),
                                                "--batch-size", "0"], expect="--batch-size"),
    Case("duplicate-key-top", lambda d: text_case((d / "suite.yaml").read_text() + "name: other\n")(d),
         expect="duplicate key 'name'"),
    Case("duplicate-key-nested", lambda d: text_case((d / "suite.yaml").read_text().replace(
        "  steps: 2\n", "  steps: 2\n  steps: 40\n"))(d), expect="duplicate key 'steps'"),
    Case("duplicate-key-train-config", lambda d: ((d / "t.yaml").write_text((d / "train.yaml").read_text() + "task: x\n"),
                                                  ["train", str(d / "t.yaml")])[1], expect="duplicate key 'task'"),
    Case("grid-startup-trials", suite_case(lambda s: s["search"].update(pruning={"fidelities": [4], "startup_trials": 2})),
         expect="startup_trials"),
    # ---- 8. shipped files ------------------------------------------------------------------------
    Case("train-export-into-package", train_case(None, "--export",
         str(Path(__import__("sgbench").__file__).parent / "assets" / "quickstart" / "model.safetensors")),
         expect="inside the installed sgbench package"),
    Case("train-export-exists", train_case(lambda raw, d: raw["output"].update(export=str(d / "trainrun" / "model.safetensors"))),
         expect="already exists"),
    Case("train-output-dir-in-package", train_case(lambda raw, d: raw["output"].update(
        dir=str(Path(__import__("sgbench").__file__).parent / "assets" / "trainrun"))),
         expect="inside the installed sgbench package"),
    Case("export-step-target-exists", train_case(None, "--export-step", "1", "{d}/trainrun/model.safetensors"),
         expect="already exists"),
    # ---- YAML shape --------------------------------------------------------------------------------
    Case("suite-is-a-list", text_case("- name: tiny\n"), expect="a suite is a YAML mapping"),
    Case("suite-empty", text_case(""), expect="a suite is a YAML mapping"),
    Case("suite-invalid-yaml", text_case("name: tiny\n  model: [\n"), expect="invalid YAML"),
    Case("suite-unhashable-key", text_case("? [a, b]\n: 1\n"), expect="invalid YAML"),
    Case("suite-unknown-key", suite_case(set_in("sampeler", {})), expect="unknown key"),
    Case("suite-binary-file", lambda d: ((d / "s.yaml").write_bytes(b"\xff\xfe\x00name"), run_args(d / "s.yaml", d))[1],
         expect="cannot read suite file"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_cleanly(case, base, tmp_path, capsys, monkeypatch):
    d = tmp_path / "w"
    shutil.copytree(base, d)
    assets = Path(__import__("sgbench").__file__).parent / "assets"
    assets_before = tree_digest(assets)
    monkeypatch.chdir(d)
    argv = case.prepare(d)
    capsys.readouterr()
    before = tree_digest(d)
    if case.patch:
        case.patch(monkeypatch, d)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors (exit 2, one line)
        code = e.code
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert code == case.code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert case.expect in lines[0], lines[0]
    for s in case.absent:
        assert s not in err
    assert tree_digest(d) == before  # no file changed, nothing created (run dir, report, export)
    assert not (d / "MARKER").exists()  # no code ran from a file
    assert tree_digest(assets) == assets_before


def test_the_corpus_covers_every_class():
    assert len(CASES) >= 60
