"""Task 'class_image': class-conditional flow matching of a DiT (TREAD routing) or MaskDiT.

Objective (paper convention): x_t = (1 - t) z + t x, the network predicts v* = x - z.
Label dropout swaps in the null id `num_classes` (the backbone's LabelEmbedder never drops).
TREAD: every training forward drops `route_rate` of the tokens over the model's routes (random
selection, loss on all tokens since routed tokens come back). MaskDiT family (e.g. the paper's
masking model, preset `MaskSiT-XL/2`): the family's kept-token count for `mask_ratio` is drawn,
the encoder sees only those tokens, and the loss is L_FM-mask (appendix C, eq. A4; see
`flow.masked_flow_matching_loss`). Every model this task writes records `velocity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn as nn

from sgbench.data import build_dataset, to_model_range
from sgbench.errors import UserError
from sgbench.train import flow
from sgbench.train.config import check_rates
from sgbench.train.export import dit_config_json, save_sgbench_model
from sgbench.train.tasks import TrainTask, register_task


@dataclass
class ImageModelConfig:
    """`model:` section. `arch` picks a preset ('SiT-XL/2', ...); explicit fields override it.

    input_size / in_channels / num_classes default to the dataset's.
    """

    family: Literal["dit", "maskdit"] = "dit"
    arch: str = ""
    input_size: Optional[int] = None
    patch_size: Optional[int] = None
    in_channels: Optional[int] = None
    hidden_size: Optional[int] = None
    depth: Optional[int] = None
    num_heads: Optional[int] = None
    mlp_ratio: Optional[float] = None
    num_classes: Optional[int] = None
    learn_sigma: bool = False
    routes: tuple[str, ...] = ()
    extra: Optional[dict] = None  # family-specific options passed to its config (e.g. MaskDiT decoder size)


@dataclass
class FlowObjectiveConfig:
    """`objective:` section."""

    time_sampling: Literal["uniform", "logit_normal"] = "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    label_dropout: float = 0.1
    route_rate: float = 0.5  # TREAD selection rate (fraction of tokens dropped) on the routes
    mask_ratio: float = 0.5  # MaskDiT masking rate
    mae_lambda: float = 0.1  # weight of the masked (MAE) term, eq. A4

    def check(self, path):
        check_rates(self, path, "label_dropout", "route_rate", "mask_ratio")
        if self.mae_lambda < 0 or self.logit_std <= 0:
            raise UserError(f"{path}: mae_lambda must be >= 0 and logit_std > 0")


def _presets(family: str) -> dict:
    """Named sizes of the family (DiT/SiT presets, or MaskDiT's incl. the paper's MaskSiT-XL/2): the
    backbone registry's, the one place a family lists them."""
    from sgbench.models.registry import get_backbone_family

    return get_backbone_family(family).presets


def _dit_config(m: ImageModelConfig, data, label_dropout: float):
    presets = _presets(m.family)
    if m.arch and m.arch not in presets:
        raise UserError(f"config.model.arch: unknown architecture {m.arch!r} for family {m.family} (known: {', '.join(sorted(presets))})")
    fields = dict(presets[m.arch]) if m.arch else {}
    c, h, w = data.shape
    if h != w:
        raise UserError(f"config.data: inputs must be square, got {h}x{w}")
    defaults = dict(input_size=h, in_channels=c, num_classes=data.num_classes)
    for k in ("input_size", "patch_size", "in_channels", "hidden_size", "depth", "num_heads", "mlp_ratio", "num_classes"):
        v = getattr(m, k)
        if v is not None:
            fields[k] = v
        elif k in defaults:
            fields.setdefault(k, defaults[k])
    if fields.get("input_size") != h or fields.get("in_channels") != c:
        raise UserError(f"config.model: input_size/in_channels {fields.get('input_size')}/{fields.get('in_channels')} do not match the data ({h}/{c})")
    fields.update(learn_sigma=m.learn_sigma, routes=tuple(m.routes), class_dropout_prob=label_dropout)
    if m.extra:
        fields.update(m.extra)
    return fields


@register_task
class ClassImageTask(TrainTask):
    name = "class_image"
    model_config = ImageModelConfig
    objective_config = FlowObjectiveConfig

    def build_data(self):
        splits = build_dataset(self.cfg.data)
        self._data = splits.train
        return splits

    def build_model(self, splits) -> nn.Module:
        m, o = self.model_cfg, self.objective_cfg
        fields = _dit_config(m, splits.train, o.label_dropout)
        if m.family == "dit":
            from sgbench.models.dit import DiT, DiTConfig

            try:
                self.net_config = DiTConfig(**fields)
            except TypeError as e:
                raise UserError(f"config.model: {e}") from None
            model = DiT(self.net_config)
            if o.route_rate > 0 and not self.net_config.routes:
                raise UserError("config.objective.route_rate > 0 needs config.model.routes (e.g. ['2-24']) or route_rate: 0")
        else:
            try:
                from sgbench.models.maskdit import MaskDiT, MaskDiTConfig  # written by the backbones area
            except ImportError as e:
                raise UserError(f"config.model.family 'maskdit' is not available in this installation ({e})") from None
            try:
                # MaskDiT's null class is the all-zero one-hot: no extra embedding row, no routes.
                self.net_config = MaskDiTConfig(**{k: v for k, v in fields.items() if k not in ("routes", "class_dropout_prob")})
            except TypeError as e:
                raise UserError(f"config.model: {e}") from None
            model = MaskDiT(self.net_config)
        self.num_classes = model.num_classes
        self.patch = self.net_config.patch_size
        self.side = self.net_config.input_size // self.patch
        return model

    def loss(self, model, batch, step):
        o = self.objective_cfg
        x, y = batch
        dev = next(model.parameters()).device
        x, y = to_model_range(x).to(dev), y.to(dev)
        b = x.shape[0]
        if o.label_dropout > 0:
            y = torch.where(torch.rand(b, device=dev) < o.label_dropout, torch.full_like(y, self.num_classes), y)
        t = flow.sample_t(b, o.time_sampling, dev, o.logit_mean, o.logit_std)
        xt, target = flow.interpolate(x, torch.randn_like(x), t)
        keep = None
        if self.model_cfg.family == "maskdit" and o.mask_ratio > 0:
            net = getattr(model, "module", model)  # DDP wraps the backbone
            keep = net.keep_indices(b, o.mask_ratio, device=dev)  # the family's kept-token count (None: none dropped)
        if keep is not None:
            # L_FM-mask (eq. A4): one forward of the masked input, as MaskDiT trains
            pred = model(xt, t, y, gamma=o.mask_ratio, keep_idx=keep)[:, : x.shape[1]]
            pm = flow.patch_mask_to_pixels(flow.token_mask(keep, self.side * self.side), self.side, self.patch)
            loss, fm, mae = flow.masked_flow_matching_loss(pred, target, t, pm, o.mae_lambda)
            return loss, {"fm": float(fm.detach()), "mae": float(mae.detach())}
        gamma = o.route_rate if self.model_cfg.family == "dit" else 0.0
        pred = model(xt, t, y, gamma=gamma)[:, : x.shape[1]]
        return flow.flow_matching_loss(pred, target), {}

    def model_metadata(self) -> dict:
        data = self._data
        return {
            "family": self.model_cfg.family,
            "config": self.net_config.to_dict() if hasattr(self.net_config, "to_dict") else dit_config_json(self.net_config),
            "parametrization": "velocity",
            "image_size": int(data.meta.get("image_size", self.net_config.input_size)),
            "space": data.space,
            "dataset": data.name,
            "num_classes": int(self.num_classes),
            "task": self.name,
        }

    def export(self, model, path, info):
        meta = {**self.model_metadata(), "train": info}
        save_sgbench_model(path, model, meta)

    @torch.no_grad()
    def evaluate(self, model, splits, n_max: int = 2000, batch: int = 250) -> dict:
        """Held-out flow-matching loss with fixed noise and times, conditional and unconditional,
        dense and at the training sparsity: the capacity gap sparse guidance feeds on."""
        held = splits.heldout
        if held is None or len(held) == 0:
            return {}
        o = self.objective_cfg
        n = min(n_max, len(held))
        dev = next(model.parameters()).device
        gammas = [0.0] + ([o.route_rate] if (self.model_cfg.family == "dit" and o.route_rate > 0) else [])
        if self.model_cfg.family == "maskdit" and o.mask_ratio > 0:
            gammas.append(o.mask_ratio)
        sums = {}
        g = torch.Generator().manual_seed(1234)
        for s in range(0, n, batch):
            x, y = held.get(range(s, min(s + batch, n)))
            x, y = to_model_range(x), y
            z = torch.randn(x.shape, generator=g)
            t = flow.sample_t(x.shape[0], o.time_sampling, None, o.logit_mean, o.logit_std, generator=g)
            xt, target = flow.interpolate(x, z, t)
            sel = torch.Generator().manual_seed(4321 + s)
            for cond in ("cond", "uncond"):
                yy = y if cond == "cond" else torch.full_like(y, self.num_classes)
                for gamma in gammas:
                    gen = torch.Generator().manual_seed(int(sel.initial_seed()))
                    pred = model(xt.to(dev), t.to(dev), yy.to(dev), gamma=gamma, generator=gen)[:, : x.shape[1]]
                    key = f"heldout_fm_{cond}_gamma{gamma:g}"
                    sums[key] = sums.get(key, 0.0) + float((pred.float().cpu() - target).pow(2).mean()) * x.shape[0]
        return {k: v / n for k, v in sums.items()}
