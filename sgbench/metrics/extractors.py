"""Feature extractors for image metrics, in a registry like torch-fidelity's.

An extractor is built by `get_extractor(name, **kwargs)` and called on uint8 NCHW tensors;
it returns a dict of float32 tensors with some of
  'pool'    [B, D]    features for Fréchet distance and precision/recall,
  'spatial' [B, 2023] sFID features (Inception only),
  'logits'  [B, K]    class logits (Inception: ADM's unbiased logits, for IS; classifier: for class_acc).
The metric registry names the columns after the extractor's `name` (`registry.image_columns`):
Inception's are ADM's (fid, sfid, is, precision, recall); DINOv2's are edm2's fd_dinov2 with
precision_dinov2 and recall_dinov2; another extractor X's fd_X, precision_X, recall_X (+ class_acc).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Dict

import torch

from sgbench.errors import UserError

_EXTRACTORS: Dict[str, Callable] = {}


def register_extractor(name: str):
    """Class/factory decorator: `@register_extractor("inception")`."""

    def wrap(factory):
        if name in _EXTRACTORS:
            raise ValueError(f"feature extractor {name!r} is already registered")
        _EXTRACTORS[name] = factory
        return factory

    return wrap


def available_extractors() -> list[str]:
    return sorted(_EXTRACTORS)


def get_extractor(name: str, **kwargs):
    if name not in _EXTRACTORS:
        raise UserError(f"unknown feature extractor {name!r}; known: {', '.join(available_extractors())}")
    return _EXTRACTORS[name](**kwargs)


def file_fingerprint(path) -> str:
    """Identity of a file for cache keys: absolute path, size and modification time."""
    p = Path(path).expanduser().resolve()
    st = p.stat()
    return f"{p}|{st.st_size}|{st.st_mtime_ns}"


class Extractor:
    """Base: subclasses set `name`, `feature_dims`, `cache_key`, and `_extract`."""

    name = "base"
    feature_dims: Dict[str, int] = {}
    batch_size = 64

    def __init__(self, device="cpu"):
        self.device = torch.device(device)

    @property
    def cache_key(self) -> str:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        if not torch.is_tensor(images) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
            raise UserError(f"feature extractors take uint8 RGB images [B, 3, H, W], got {shape}")
        return {k: v.float().cpu() for k, v in self._extract(images.to(self.device)).items()}

    def _extract(self, images: torch.Tensor) -> Dict[str, torch.Tensor]:
        raise NotImplementedError


def _reject_unknown(name: str, unknown: dict) -> None:
    if unknown:
        raise UserError(f"feature extractor {name!r} got unknown options: {', '.join(sorted(unknown))}")


def _inception_weights_hint() -> str:
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    return (
        f"download torch-fidelity's converted TF Inception (2015-12-05) weights {URL_INCEPTION_V3.rsplit('/', 1)[-1]} "
        f"from {URL_INCEPTION_V3} on a machine with internet and pass its path with --inception-weights"
    )


def spatial_features_adm(mixed_6d_branch1x1: torch.Tensor) -> torch.Tensor:
    """ADM sFID features: [B, 192, 17, 17] (NCHW) -> first 7 channels -> flattened H, W, C -> [B, 2023].

    ADM reads TF's NHWC `mixed_6/conv` and keeps `[..., :7]` before reshaping, so the channel
    index varies fastest.
    """
    x = mixed_6d_branch1x1[:, :7]
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)


@register_extractor("inception")
class InceptionExtractor(Extractor):
    """torch-fidelity's port of the TF Inception used by ADM (`pool_3`, `mixed_6/conv`, logits)."""

    name = "inception"
    feature_dims = {"pool": 2048, "spatial": 2023, "logits": 1008}

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 64, feature_extractor_weights_path=None, **unknown):
        super().__init__(device)
        _reject_unknown("inception", unknown)
        weights_path = weights_path or feature_extractor_weights_path  # torch-fidelity's name for it
        if not weights_path:
            raise UserError(f"Inception weights are required: {_inception_weights_hint()}")
        path = Path(weights_path).expanduser()
        if not path.is_file():
            raise UserError(f"Inception weights not found: {path}; {_inception_weights_hint()}")
        import io

        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        from sgbench.torchfiles import load_state_dict

        # torch-fidelity unpickles the weights file (torch.load(weights_only=False)): read the state
        # dict here without running code, and hand torch-fidelity a copy holding tensors only
        state = load_state_dict(path, "Inception weights")
        buffer = io.BytesIO()
        torch.save(state, buffer)
        buffer.seek(0)
        try:
            net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=buffer
            )
        except (RuntimeError, OSError, EOFError, ValueError, KeyError) as e:  # wrong/corrupt file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UserError(f"cannot load Inception weights {path}: {first}") from None
        self.net = net.to(self.device)
        self.weights_path = path
        self.batch_size = int(batch_size)
        self._spatial = None
        # torch-fidelity exposes no spatial features: capture Mixed_6d's 1x1 branch (after BN+ReLU).
        self.net.Mixed_6d.branch1x1.register_forward_hook(self._capture)

    def _capture(self, module, inputs, output):
        self._spatial = output

    @property
    def cache_key(self) -> str:
        return f"inception|{file_fingerprint(self.weights_path)}"

    def _extract(self, images):
        self._spatial = None
        pool, logits = self.net(images)
        spatial = spatial_features_adm(self._spatial)
        self._spatial = None
        return {"pool": pool, "spatial": spatial, "logits": logits}


@register_extractor("classifier")
class ClassifierExtractor(Extractor):
    """sgbench's ShapeClassifier: penultimate features ('pool') and class logits."""

    name = "classifier"

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 256, **unknown):
        super().__init__(device)
        _reject_unknown("classifier", unknown)
        if not weights_path:
            raise UserError("the classifier extractor needs --classifier-weights PATH (an sgbench classifier .safetensors)")
        from sgbench.metrics.classifier import load_classifier

        self.net = load_classifier(weights_path, device=self.device)
        self.weights_path = Path(weights_path).expanduser()
        self.batch_size = int(batch_size)
        c = self.net.config
        self.feature_dims = {"pool": c.feature_dim, "logits": c.num_classes}

    @property
    def cache_key(self) -> str:
        return f"classifier|{file_fingerprint(self.weights_path)}"

    def _extract(self, images):
        feats = self.net.features(images)
        return {"pool": feats, "logits": self.net.logits_from_features(feats)}


@register_extractor("dinov2")
class DINOv2Extractor(Extractor):
    """DINOv2 ViT-L/14 final-norm CLS features with edm2's preprocessing ('pool', for FD_DINOv2),
    from a local torch-hub or timm weights file (sgbench.metrics.dinov2)."""

    name = "dinov2"

    def __init__(self, weights_path=None, device="cpu", batch_size: int = 64, **unknown):
        super().__init__(device)
        _reject_unknown("dinov2", unknown)
        from sgbench.metrics.dinov2 import WEIGHTS_HINT, load_dinov2

        if not weights_path:
            raise UserError(f"the dinov2 extractor needs its weights file: {WEIGHTS_HINT}")
        self.net, self.layout = load_dinov2(weights_path, device=self.device)
        self.weights_path = Path(weights_path).expanduser()
        self.batch_size = int(batch_size)
        self.feature_dims = {"pool": self.net.config.embed_dim}

    @property
    def cache_key(self) -> str:
        return f"dinov2|{file_fingerprint(self.weights_path)}"

    def _extract(self, images):
        return {"pool": self.net(images)}


def cache_digest(*parts: str) -> str:
    return hashlib.sha1("\n".join(parts).encode()).hexdigest()[:16]
