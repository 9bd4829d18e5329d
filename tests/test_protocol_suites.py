"""The shipped GPU suites follow the paper's protocol: no suite hard-codes a parametrization, each
one's checkpoint (in the format its comments name) resolves its own; the paper's masking model
(MaskSiT-XL/2, flow matching + MAE-FM) trains with `sgbench train` and has its suite."""

import argparse
from pathlib import Path

import pytest
import torch
import yaml

from sgbench.cli import main
from sgbench.config import load_suite
from sgbench.errors import UserError

SUITES = Path(__file__).resolve().parents[1] / "suites"
GPU_SUITES = ["imagenet_grid", "imagenet_search", "imagenet_table2", "masking_grid", "masking_grid_maskdit_edm"]


def all_suites():
    return sorted(p for p in SUITES.glob("*.yaml") if not p.name.startswith("train_"))


@pytest.mark.parametrize("path", all_suites(), ids=lambda p: p.stem)
def test_no_shipped_suite_hard_codes_a_parametrization(path):
    assert load_suite(path, check_files=False).suite.model.parametrization is None


def tiny_dit(routes=("1-2",)):
    from sgbench.models import DiT, dit_config

    return DiT(dit_config("DiT-S/2", input_size=8, num_classes=5, hidden_size=32, depth=4, num_heads=2,
                          learn_sigma=False, routes=list(routes)))


def tiny_mask(arch="MaskSiT-tiny"):
    from sgbench.models import MaskDiT, maskdit_config

    return MaskDiT(maskdit_config(arch, input_size=8, num_classes=5))


def stand_in(suite: str, path: Path) -> str:
    """A tiny file in the format the suite's comments name; returns the parametrization it records."""
    from sgbench.models import save_sgbench_safetensors

    path.parent.mkdir(parents=True, exist_ok=True)
    if suite == "masking_grid_maskdit_edm":  # an Anima-Lab/MaskDiT train file
        sd = {"model." + k: v for k, v in tiny_mask("MaskDiT-S/2").state_dict().items()}
        torch.save({"model": sd, "ema": sd, "opt": {}, "args": argparse.Namespace(config="imagenet256-latent.yaml")}, path)
        return "edm"
    if suite == "masking_grid":  # the export of suites/train_masking.yaml
        save_sgbench_safetensors(path, tiny_mask(), "velocity")
        return "velocity"
    save_sgbench_safetensors(path, tiny_dit(), "edm")  # `sgbench convert` of a tread train.py file
    return "edm"


@pytest.mark.parametrize("name", GPU_SUITES)
def test_each_gpu_suite_resolves_the_parametrization_its_checkpoint_records(name, tmp_path, monkeypatch):
    from sgbench.run.stages import ClassStages as Stages, model_spec

    monkeypatch.setenv("SGBENCH_DATA", str(tmp_path))
    loaded = load_suite(SUITES / f"{name}.yaml", check_files=False)
    for path in (loaded.files.checkpoint, loaded.files.weak_checkpoint):
        if path is not None:
            want = stand_in(name, path)
    Stages(loaded, "cpu", log=lambda m: None).validate()  # what `sgbench run` checks before its run directory
    from sgbench.models.loading import check_model_spec

    assert check_model_spec(model_spec(loaded)) == want


def test_a_run_whose_checkpoint_records_nothing_stops_before_its_run_directory(tmp_path, capsys):
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier
    from sgbench.models.dit import DiT, DiTConfig

    cfg = DiTConfig(input_size=32, patch_size=8, in_channels=3, hidden_size=32, depth=2, num_heads=2,
                    num_classes=10, learn_sigma=False)
    m = DiT(cfg)
    torch.save({"model_state_dict": {"model." + k: v for k, v in m.state_dict().items()}}, tmp_path / "tread.pt")
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), tmp_path / "clf.safetensors")
    suite = {"name": "t", "device": "cpu", "model": {"checkpoint": "tread.pt", "arch": "DiT-S/8",
                                                      "options": {"config": cfg.to_dict()}},
             "sampler": {"steps": 2, "batch_size": 8}, "methods": [{"name": "u", "method": "none"}],
             "metrics": {"extractor": "classifier", "weights": "clf.safetensors",
                         "reference": {"dataset": "shapes", "n": 16}, "n_samples": 8, "batch_size": 8}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    assert main(["run", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "CompVis/tread training file" in err and "model.parametrization" in err
    assert not (tmp_path / "results").exists()


# ---- the paper's masking model -----------------------------------------------------------------

def test_masksit_presets_are_the_papers_masking_model_and_a_cpu_sibling():
    from sgbench.models import MASKDIT_PRESETS, maskdit_config

    c = maskdit_config("MaskSiT-XL/2")
    assert (c.depth, c.hidden_size, c.num_heads, c.patch_size) == (28, 1152, 16, 2)  # SiT-XL/2 (Table A2)
    assert (c.decoder_hidden_size, c.decoder_depth, c.decoder_num_heads) == (512, 8, 16)  # D^dec
    assert (c.input_size, c.in_channels, c.num_classes, c.num_tokens) == (32, 4, 1000, 256)
    t = maskdit_config("MaskSiT-tiny", input_size=32, in_channels=3, num_classes=10)
    assert t.num_tokens == 64 and t.depth < c.depth and "MaskSiT-tiny" in MASKDIT_PRESETS
    from sgbench.models.loading import ModelSpec, _family_of

    assert _family_of(ModelSpec(arch="MaskSiT-XL/2"), None) == "maskdit"  # its own family: MaskDiT's token rule


def test_training_configs_of_the_masking_model_parse():
    from sgbench.train import load_train_config

    cfg, _ = load_train_config(SUITES / "train_masking.yaml")
    assert cfg.task == "class_image" and cfg.model["family"] == "maskdit" and cfg.model["arch"] == "MaskSiT-XL/2"
    assert cfg.objective["mask_ratio"] == 0.5 and cfg.objective["mae_lambda"] > 0
    assert (cfg.train.lr, cfg.train.batch_size, tuple(cfg.train.betas)) == (1e-4, 256, (0.9, 0.999))  # Table A2
    masking = load_suite(SUITES / "masking_grid.yaml", check_files=False)
    assert masking.files.checkpoint.name == Path(cfg.output.export).name
    tiny, _ = load_train_config(SUITES / "train_masking_tiny.yaml")
    assert tiny.model["arch"] == "MaskSiT-tiny" and tiny.objective == {**tiny.objective, "mask_ratio": 0.5}


def test_sgbench_train_runs_the_tiny_masking_config(tmp_path, capsys):
    from sgbench.models import MaskDiT, ModelSpec, load_denoiser, read_sgbench_metadata

    raw = yaml.safe_load((SUITES / "train_masking_tiny.yaml").read_text())
    raw["data"].update(n_train=64, n_heldout=8)
    raw["output"] = {"dir": str(tmp_path / "run"), "export": str(tmp_path / "model.safetensors")}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    assert main(["train", str(tmp_path / "c.yaml"), "--steps", "2", "--no-progress"]) == 0
    meta = read_sgbench_metadata(tmp_path / "model.safetensors")
    assert meta["family"] == "maskdit" and meta["parametrization"] == "velocity" and meta["config"]["decoder_depth"] == 2
    den = load_denoiser(ModelSpec(checkpoint=str(tmp_path / "model.safetensors")))
    assert isinstance(den.backbone, MaskDiT) and den.parametrization == "velocity"
    log = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(log) == 1 and "\"mae\"" in log[0]  # log_every 50: the last step


def test_masked_loss_of_the_task_is_eq_a4_by_hand():
    """ClassImageTask.loss on a fixed tiny MaskDiT equals L_FM-mask computed token by token:
    mean over visible tokens of |v - v*|^2 + lambda * mean over masked tokens of (1-t)^2 |v - v*|^2."""
    from sgbench.train.class_image import ClassImageTask, FlowObjectiveConfig, ImageModelConfig

    torch.manual_seed(0)
    model = tiny_mask()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    lam = 0.7
    task = ClassImageTask(None, ImageModelConfig(family="maskdit"),
                          FlowObjectiveConfig(time_sampling="uniform", label_dropout=0.0, mask_ratio=0.5, mae_lambda=lam))
    task.num_classes, task.patch, task.side = 5, 4, 2  # 8x8 latents, patch 4: 4 tokens
    x = torch.randint(0, 256, (3, 4, 8, 8), dtype=torch.uint8)
    y = torch.tensor([0, 3, 4])
    torch.manual_seed(1)
    loss, extra = task.loss(model, (x, y), step=0)

    torch.manual_seed(1)  # the same draws, in the task's order: t, z, kept tokens
    from sgbench.data import to_model_range

    xm = to_model_range(x)
    t = torch.rand(3)
    z = torch.randn_like(xm)
    keep = model.keep_indices(3, 0.5)
    xt = (1 - t.view(-1, 1, 1, 1)) * z + t.view(-1, 1, 1, 1) * xm
    with torch.no_grad():
        v = model(xt, t, y, gamma=0.5, keep_idx=keep)
    vis, msk, printed = [], [], []
    for b in range(3):
        for tok in range(4):
            r, c = divmod(tok, 2)
            patch = (b, slice(None), slice(4 * r, 4 * r + 4), slice(4 * c, 4 * c + 4))  # the token's 4x4 pixels
            e = (v[patch] - (xm - z)[patch]).pow(2).flatten()
            if tok in keep[b].tolist():
                vis.append(e)
            else:
                msk.append((1 - t[b]) ** 2 * e)
                printed.append((1 - t[b]) ** 2 * v[patch].pow(2).flatten())  # eq. A3 as printed: no v*
    fm, mae = torch.cat(vis).mean(), torch.cat(msk).mean()
    assert len(msk) == 3 * 2  # half of the 4 tokens masked per sample
    assert extra["fm"] == pytest.approx(float(fm), rel=1e-5) and extra["mae"] == pytest.approx(float(mae), rel=1e-5)
    assert float(loss.detach()) == pytest.approx(float(fm + lam * mae), rel=1e-5)
    assert float(torch.cat(printed).mean()) != pytest.approx(float(mae), rel=1e-2)  # the implementation keeps v*


def test_suites_name_the_masking_models_they_expect():
    text = (SUITES / "masking_grid.yaml").read_text()
    assert "MaskSiT-XL/2" in text and "train_masking.yaml" in text
    edm = load_suite(SUITES / "masking_grid_maskdit_edm.yaml", check_files=False).suite
    assert edm.model.arch == "MaskDiT-XL/2" and edm.sampler.rounding == "truncate"
    with pytest.raises(UserError):
        load_suite(SUITES / "masking_grid.yaml")  # its files are the user's: missing here


def test_the_shipped_search_suite_is_the_grid_suite_searched_by_the_benchmarks_choice():
    """suites/imagenet_search.yaml: imagenet_grid's model, sampler, metrics and space, searched by
    the strategy docs/search-efficiency.md chose (multi-objective FID vs GFLOPs) at <= 25 % of the
    grid's trials."""
    from sgbench.search.space import grid_points

    grid = load_suite(SUITES / "imagenet_grid.yaml", check_files=False).suite
    search = load_suite(SUITES / "imagenet_search.yaml", check_files=False).suite
    for key in ("model", "sampler", "metrics", "seeds", "methods"):
        assert getattr(search, key) == getattr(grid, key), key
    assert search.search.space == grid.search.space and search.search.method == grid.search.method
    assert search.search.sampler == "multi-objective" and search.search.objectives == ("fid", "gflops")
    assert search.search.pruning is None and search.search.budget * 4 <= len(grid_points(grid.search.space)) == 180

