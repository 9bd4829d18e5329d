"""Small CNN domain classifier: features for FD_<extractor> and class accuracy on CPU datasets.

Input is uint8 NCHW images (what samplers and datasets hand to metrics); the network maps
them to [-1, 1] itself so callers never guess the preprocessing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from sgbench.errors import UserError


@dataclass
class ClassifierConfig:
    num_classes: int = 10
    in_channels: int = 3
    image_size: int = 32
    width: int = 32
    feature_dim: int = 128


class ShapeClassifier(nn.Module):
    """5 conv layers -> global average pool -> `feature_dim` penultimate features -> logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = c = config
        w = c.width
        chans = [c.in_channels, w, w, 2 * w, 2 * w, 4 * w]
        layers = []
        for i in range(5):
            stride = 2 if i in (1, 3) else 1
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=stride, padding=1), nn.BatchNorm2d(chans[i + 1]), nn.ReLU()]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(chans[-1], c.feature_dim)
        self.head = nn.Linear(c.feature_dim, c.num_classes)

    @staticmethod
    def preprocess(images_uint8: torch.Tensor) -> torch.Tensor:
        if images_uint8.dtype != torch.uint8:
            raise UserError(f"classifier expects uint8 images, got {images_uint8.dtype}")
        return images_uint8.float() / 127.5 - 1.0

    def features(self, images_uint8: torch.Tensor) -> torch.Tensor:
        h = self.conv(self.preprocess(images_uint8)).mean(dim=(2, 3))
        return F.relu(self.fc(h))

    def logits_from_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(feats)

    def forward(self, images_uint8: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images_uint8))


def save_classifier(model: ShapeClassifier, path, extra_meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"sgbench_kind": "classifier", "config": json.dumps(asdict(model.config))}
    meta.update({k: json.dumps(v) for k, v in (extra_meta or {}).items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp), metadata=meta)
    tmp.replace(path)


def load_classifier(path, device="cpu") -> ShapeClassifier:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"classifier weights not found: {path} (train one with `sgbench train suites/train_classifier.yaml`)")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as e:  # corrupt or not safetensors
        raise UserError(f"cannot read classifier weights {path}: {e}") from None
    if meta.get("sgbench_kind") != "classifier":
        raise UserError(f"{path} is not an sgbench classifier checkpoint (missing metadata)")
    model = ShapeClassifier(ClassifierConfig(**json.loads(meta["config"])))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise UserError(f"classifier weights {path} do not fit: {str(e).splitlines()[0]}") from None
    return model.to(device).eval()
