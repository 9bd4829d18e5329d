"""Condition sources of `sampling.generate`: class labels (random by default, as ADM/DiT/SiT;
balanced as an option) and prompts through a text encoder; the one autocast mapping."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from sgbench.config.schema import SamplerConfig
from sgbench.errors import UserError
from sgbench.guidance import GuidanceConfig, build_rule
from sgbench.models.dit import DiT, DiTConfig
from sgbench.models.denoiser import VelocityDenoiser
from sgbench.sampling import (LABEL_MODES, ClassLabels, PixelDecoder, Prompts, autocast_dtype, generate,
                              initial_noise, labels_for, make_generators, sample)

ROOT = Path(__file__).resolve().parents[1] / "sgbench"
K = 10


def tiny_dit(num_classes=K):
    torch.manual_seed(0)
    model = DiT(DiTConfig(input_size=8, patch_size=4, in_channels=3, hidden_size=16, depth=1, num_heads=2,
                          num_classes=num_classes, learn_sigma=False))
    return VelocityDenoiser(model, num_classes, (3, 8, 8)).eval()


def _labels(den, **kw):
    out = list(generate(den, build_rule(GuidanceConfig("none")), PixelDecoder(), 12, seed=4, steps=1, **kw))
    return np.concatenate([b[0] for b in out]), np.concatenate([b[2] for b in out])


def test_random_labels_are_the_default_everywhere():
    from sgbench.commands.sample import register
    import argparse

    assert LABEL_MODES[0] == "random" and SamplerConfig().labels == "random"
    assert np.array_equal(labels_for(range(50), K, seed=3), labels_for(range(50), K, seed=3, mode="random"))
    sub = argparse.ArgumentParser().add_subparsers()
    assert register(sub).parse_args(["--num-samples", "1", "--out", "x.npz"]).labels == "random"
    den = tiny_dit()
    _, default = _labels(den, batch_size=5)
    assert np.array_equal(default, labels_for(range(12), K, seed=4, mode="random"))
    assert not np.array_equal(default, np.arange(12) % K)


def test_random_labels_depend_only_on_seed_and_index():
    full = labels_for(range(1000), K, seed=7)
    assert np.array_equal(labels_for([999, 3, 500], K, seed=7), full[[999, 3, 500]])
    assert np.array_equal(labels_for(range(1000), K, seed=7), full)
    assert not np.array_equal(labels_for(range(1000), K, seed=8), full)
    den = tiny_dit()
    i1, l1 = _labels(den, batch_size=1)
    i5, l5 = _labels(den, batch_size=5)
    # a stream split in two (a pruning fidelity, or two workers) draws the same labels
    part = [list(generate(den, build_rule(GuidanceConfig("none")), PixelDecoder(), 12, seed=4, batch_size=4,
                          steps=1, indices=r)) for r in (range(0, 7), range(7, 12))]
    lp = np.concatenate([b[2] for p in part for b in p])
    assert np.array_equal(l1, l5) and np.array_equal(l1, lp) and np.array_equal(i1, np.arange(12))


def test_random_labels_are_uniform_and_not_cyclic():
    labels = labels_for(range(20000), K, seed=0)
    counts = np.bincount(labels, minlength=K)
    chi2 = float(((counts - 2000) ** 2 / 2000).sum())
    assert chi2 < 27.9  # chi-square, 9 dof: p = 0.001
    assert abs((labels == np.arange(20000) % K).mean() - 1 / K) < 0.01  # not i mod K
    # consecutive labels are independent: the pair (l_i, l_{i+1}) is uniform over K^2
    pairs = np.bincount(labels[:-1] * K + labels[1:], minlength=K * K)
    assert float(((pairs - 19999 / K ** 2) ** 2 / (19999 / K ** 2)).sum()) < 148.2  # 99 dof, p = 0.001


def test_balanced_labels_stay_an_option():
    den = tiny_dit()
    _, bal = _labels(den, batch_size=5, conditions="balanced")
    assert np.array_equal(bal, np.arange(12) % K)
    _, same = _labels(den, batch_size=5, conditions=ClassLabels("balanced"))
    assert np.array_equal(same, bal)
    with pytest.raises(UserError, match="unknown label mode 'uniform'; known: random, balanced"):
        ClassLabels("uniform")


class RecordingEncoder:
    """encode(prompts) -> a TextCondition of one token per prompt whose value is the prompt's length."""

    dim = 16

    def __init__(self):
        self.seen = []

    def encode(self, prompts):
        from sgbench.models.t2i_dit import TextCondition

        self.seen.append(list(prompts))
        emb = torch.tensor([[[float(len(p))] * self.dim] for p in prompts])
        return TextCondition(emb, torch.ones(len(prompts), 1, dtype=torch.bool), tuple(prompts))


def tiny_t2i(encoder):
    from sgbench.models.t2i_dit import T2IDenoiser, T2IDiT, t2i_config

    torch.manual_seed(0)
    model = T2IDiT(t2i_config("T2I-tiny", input_size=8, patch_size=4, in_channels=3, text_dim=16)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return T2IDenoiser(model, encoder.encode([""]))


def test_prompts_condition_sample_i_on_prompt_i_div_k():
    enc = RecordingEncoder()
    den = tiny_t2i(enc)
    prompts = ["a red disk", "two squares", "a blue ring"]
    source = Prompts(prompts, enc, images_per_prompt=2)
    rule = build_rule(GuidanceConfig("cfg", omega=2.0))
    out = list(generate(den, rule, PixelDecoder(), source.num_samples, seed=1, batch_size=4, steps=2,
                        conditions=source, indices=[5, 0, 3, 2, 1, 4]))
    idx, images, labels = (np.concatenate([b[i] for b in out]) for i in range(3))
    assert idx.tolist() == [5, 0, 3, 2, 1, 4] and labels.tolist() == [2, 0, 1, 1, 0, 2]
    assert enc.seen[1:] == [["a blue ring", "a red disk", "two squares", "two squares"], ["a red disk", "a blue ring"]]
    # sample 3 is exactly `sample` with its own generator and prompt, decoded by the shared decoder
    gens = make_generators(1, [3])
    x = sample(den, rule, initial_noise(den.latent_shape, gens), enc.encode(["two squares"]), steps=2, generators=gens)
    assert np.abs(PixelDecoder()(x)[0].astype(int) - images[2].astype(int)).max() <= 1
    # the same images in batches of 1
    one = list(generate(den, rule, PixelDecoder(), 6, seed=1, batch_size=1, steps=2, conditions=source,
                        indices=[5, 0, 3, 2, 1, 4]))
    assert np.abs(np.concatenate([b[1] for b in one]).astype(int) - images.astype(int)).max() <= 1


def test_condition_sources_check_the_model_kind():
    enc = RecordingEncoder()
    rule = build_rule(GuidanceConfig("none"))
    with pytest.raises(UserError, match="not class-conditional"):
        generate(tiny_t2i(enc), rule, PixelDecoder(), 2, 0, 1, steps=1)
    with pytest.raises(UserError, match="class-conditional: sample it with class labels"):
        generate(tiny_dit(), rule, PixelDecoder(), 2, 0, 1, steps=1, conditions=Prompts(["x"], enc))
    with pytest.raises(UserError, match="beyond the 1 prompts x 2 images"):
        generate(tiny_t2i(enc), rule, PixelDecoder(), 3, 0, 1, steps=1, conditions=Prompts(["x"], enc, 2))


def test_one_autocast_mapping():
    assert autocast_dtype("auto", "cpu") is None and autocast_dtype("auto", "cuda") is torch.bfloat16
    assert autocast_dtype("fp32", "cuda") is None and autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert autocast_dtype(None, "cpu") is None and autocast_dtype(torch.float16, "cpu") is torch.float16
    with pytest.raises(UserError, match="unknown sampler precision 'fp16'"):
        autocast_dtype("fp16", "cpu")
    # no other sampling or run module names a bf16 dtype
    uses = []
    for package in ("sampling", "run", "t2i"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            if any(isinstance(n, ast.Attribute) and n.attr == "bfloat16" for n in ast.walk(tree)):
                uses.append(str(path.relative_to(ROOT)))
    assert uses == ["sampling/precision.py"]


def test_t2i_generation_has_no_copy_of_its_own():
    assert not (ROOT / "t2i" / "generate.py").exists()
    model_src = (ROOT / "t2i" / "model.py").read_text()
    assert "pixels_to_uint8" not in model_src and "clamp" not in model_src
