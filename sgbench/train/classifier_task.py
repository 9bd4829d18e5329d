"""Task 'classifier': the small domain classifier (ShapeClassifier) whose features give FD_classifier
and whose predictions give class accuracy. Cross-entropy on uint8 images; no EMA needed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sgbench.data import build_dataset
from sgbench.errors import UserError
from sgbench.train.config import check_rates
from sgbench.train.tasks import TrainTask, register_task


@dataclass
class ClassifierModelConfig:
    """`model:` section: ShapeClassifier sizes (num_classes, in_channels, image_size from the data)."""

    width: int = 32
    feature_dim: int = 128


@dataclass
class ClassifierObjectiveConfig:
    label_smoothing: float = 0.0
    flip: bool = False  # random horizontal flips (off: some classes are not mirror-symmetric in meaning)

    def check(self, path):
        check_rates(self, path, "label_smoothing")


@register_task
class ClassifierTask(TrainTask):
    name = "classifier"
    model_config = ClassifierModelConfig
    objective_config = ClassifierObjectiveConfig

    def build_data(self):
        splits = build_dataset(self.cfg.data)
        if splits.train.space != "pixel":
            raise UserError("config.data: the classifier trains on images (uint8), not latents")
        return splits

    def build_model(self, splits):
        from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier

        c, h, w = splits.train.shape
        self.config = ClassifierConfig(
            num_classes=splits.train.num_classes,
            in_channels=c,
            image_size=h,
            width=self.model_cfg.width,
            feature_dim=self.model_cfg.feature_dim,
        )
        return ShapeClassifier(self.config)

    def loss(self, model, batch, step):
        x, y = batch
        dev = next(model.parameters()).device
        x, y = x.to(dev), y.to(dev)
        if self.objective_cfg.flip:
            flip = torch.rand(x.shape[0], device=dev) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.objective_cfg.label_smoothing)
        return loss, {"acc": float((logits.argmax(1) == y).float().mean())}

    @torch.no_grad()
    def evaluate(self, model, splits, batch: int = 500) -> dict:
        held = splits.heldout
        if held is None or len(held) == 0:
            return {}
        model.eval()
        dev = next(model.parameters()).device
        correct = 0
        for s in range(0, len(held), batch):
            x, y = held.get(range(s, min(s + batch, len(held))))
            correct += int((model(x.to(dev)).argmax(1).cpu() == y).sum())
        self.heldout_accuracy = correct / len(held)
        return {"heldout_accuracy": self.heldout_accuracy, "heldout_n": len(held)}

    def model_metadata(self):
        return {"family": "shape_classifier", "task": self.name}

    def export(self, model, path, info):
        from sgbench.metrics.classifier import save_classifier

        extra = dict(info)
        if hasattr(self, "heldout_accuracy"):
            extra["heldout_accuracy"] = self.heldout_accuracy
        dataset = self.cfg.data.get("name", "")
        save_classifier(model, path, {"dataset": dataset, "train": extra})
