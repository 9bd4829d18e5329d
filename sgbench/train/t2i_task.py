"""Task 't2i': text-conditional flow matching of the Llama-style T2I DiT with TREAD routing.

Objective (paper convention): x_t = (1 - t) z + t x, the network predicts v* = x - z.
Prompt dropout swaps in the empty prompt (the Denoiser's null condition is its encoding).
TREAD: every training forward drops `route_rate` of the tokens on the model's routes.
The text encoder is frozen; the DiT's 2-layer text adapter trains with it.

Data: `data.name: shapes_world` (sgbench.t2i.shapes_world; scenes + GenEval-style prompts,
generated from `seed`, pixel space in [-1, 1]).

    task: t2i
    data: {name: shapes_world, n_train: 20000, n_heldout: 1000, seed: 0}
    model: {arch: T2I-shapes, text_encoder: {kind: tiny, dim: 32}}
    objective: {time_sampling: logit_normal, text_dropout: 0.1, route_rate: 0.5}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn as nn

from sgbench.errors import UserError
from sgbench.train import flow
from sgbench.train.config import check_rates
from sgbench.train.tasks import TrainTask, register_task


@dataclass
class T2IDataConfig:
    name: Literal["shapes_world"] = "shapes_world"
    n_train: int = 20000
    n_heldout: int = 1000
    seed: int = 0
    image_size: int = 32

    def check(self, path):
        if self.n_train < 1 or self.n_heldout < 0 or self.image_size < 16:
            raise UserError(f"{path}: n_train must be >= 1, n_heldout >= 0 and image_size >= 16")


@dataclass
class T2IModelConfig:
    """`model:` section: a preset from sgbench.models.t2i_dit.T2I_PRESETS, overrides, text encoder."""

    arch: str = "T2I-shapes"
    overrides: dict = field(default_factory=dict)  # any T2IDiTConfig field
    text_encoder: dict = field(default_factory=lambda: {"kind": "tiny", "dim": 32})


@dataclass
class T2IObjectiveConfig:
    time_sampling: Literal["uniform", "logit_normal"] = "logit_normal"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    text_dropout: float = 0.1
    route_rate: float = 0.5

    def check(self, path):
        check_rates(self, path, "text_dropout", "route_rate")
        if self.logit_std <= 0:
            raise UserError(f"{path}.logit_std: must be > 0")


def shapes_world_splits(cfg: T2IDataConfig):
    """DataSplits whose labels index prompts (dataset.meta['prompts'])."""
    from sgbench.data.arrays import ArrayDataset
    from sgbench.data.registry import DataSplits
    from sgbench.t2i.shapes_world import WorldConfig, render, sample_scenes

    world = WorldConfig(image_size=cfg.image_size)

    def make(n, seed):
        scenes = sample_scenes(n, seed, world)
        x = np.stack([render(o, world) for o, _ in scenes]).transpose(0, 3, 1, 2).copy()
        meta = {"prompts": [m["prompt"] for _, m in scenes], "metadata": [m for _, m in scenes],
                "image_size": cfg.image_size}
        return ArrayDataset(x, np.arange(n), num_classes=0, space="pixel", name="shapes_world", meta=meta)

    held = make(cfg.n_heldout, cfg.seed + 1_000_003) if cfg.n_heldout else None
    return DataSplits(make(cfg.n_train, cfg.seed), held)


@register_task
class T2ITask(TrainTask):
    name = "t2i"
    model_config = T2IModelConfig
    objective_config = T2IObjectiveConfig

    def build_data(self):
        from sgbench.train.config import from_dict

        self.data_cfg = from_dict(T2IDataConfig, self.cfg.data, "config.data")
        self.splits = shapes_world_splits(self.data_cfg)
        return self.splits

    def build_model(self, splits) -> nn.Module:
        from sgbench.models.t2i_dit import T2IDiT, t2i_config
        from sgbench.models.text_encoders import TextEncoderSpec, build_text_encoder

        m = self.model_cfg
        self.encoder_spec = TextEncoderSpec.from_dict(m.text_encoder)
        self.encoder = build_text_encoder(self.encoder_spec)
        c, h, w = splits.train.shape
        overrides = {"input_size": h, "in_channels": c, "text_dim": self.encoder.dim, **m.overrides}
        try:
            self.net_config = t2i_config(m.arch, **overrides)
        except TypeError as e:
            raise UserError(f"config.model.overrides: {e}") from None
        if self.net_config.input_size != h or self.net_config.in_channels != c:
            raise UserError(f"config.model: input_size/in_channels do not match the data ({h}/{c})")
        if self.objective_cfg.route_rate > 0 and not self.net_config.routes:
            raise UserError("config.objective.route_rate > 0 needs routes in the model (e.g. overrides.routes: ['1-4'])")
        self.prompts = splits.train.meta["prompts"]
        return T2IDiT(self.net_config)

    def _encode(self, prompts, device):
        c = self.encoder.encode(list(prompts))
        return c.emb.to(device), c.mask.to(device)

    def loss(self, model, batch, step):
        o = self.objective_cfg
        x, idx = batch
        dev = next(model.parameters()).device
        x = x.float().div(127.5).sub(1.0).to(dev)
        b = x.shape[0]
        drop = torch.rand(b) < o.text_dropout
        prompts = ["" if d else self.prompts[int(i)] for i, d in zip(idx, drop)]
        emb, mask = self._encode(prompts, dev)
        t = flow.sample_t(b, o.time_sampling, dev, o.logit_mean, o.logit_std)
        xt, target = flow.interpolate(x, torch.randn_like(x), t)
        pred = model(xt, t, emb, mask, gamma=o.route_rate)
        return flow.flow_matching_loss(pred, target), {}

    def model_metadata(self) -> dict:
        return {
            "family": "t2i",
            "config": self.net_config.to_dict(),
            "text_encoder": self.encoder_spec.to_dict(),
            "parametrization": "velocity",
            "image_size": int(self.data_cfg.image_size),
            "space": "pixel",
            "dataset": self.data_cfg.name,
            "task": self.name,
        }

    def export(self, model, path, info):
        from sgbench.train.export import save_sgbench_model

        save_sgbench_model(path, model, {**self.model_metadata(), "train": info})

    @torch.no_grad()
    def evaluate(self, model, splits, n_max: int = 1000, batch: int = 250) -> dict:
        """Held-out flow-matching loss (fixed noise/times), conditional vs empty prompt, dense vs
        the training sparsity: the capacity gaps CFG and SG feed on."""
        held = splits.heldout
        if held is None or len(held) == 0:
            return {}
        o = self.objective_cfg
        n = min(n_max, len(held))
        dev = next(model.parameters()).device
        gammas = [0.0] + ([o.route_rate] if o.route_rate > 0 else [])
        sums: dict = {}
        g = torch.Generator().manual_seed(1234)
        for s in range(0, n, batch):
            x, idx = held.get(range(s, min(s + batch, n)))
            x = x.float() / 127.5 - 1.0
            z = torch.randn(x.shape, generator=g)
            t = flow.sample_t(x.shape[0], o.time_sampling, None, o.logit_mean, o.logit_std, generator=g)
            xt, target = flow.interpolate(x, z, t)
            for cond in ("cond", "uncond"):
                prompts = [held.meta["prompts"][int(i)] if cond == "cond" else "" for i in idx]
                emb, mask = self._encode(prompts, dev)
                for gamma in gammas:
                    gen = torch.Generator().manual_seed(4321 + s)
                    pred = model(xt.to(dev), t.to(dev), emb, mask, gamma=gamma, generator=gen)
                    key = f"heldout_fm_{cond}_gamma{gamma:g}"
                    sums[key] = sums.get(key, 0.0) + float((pred.float().cpu() - target).pow(2).mean()) * x.shape[0]
        return {k: v / n for k, v in sums.items()}
