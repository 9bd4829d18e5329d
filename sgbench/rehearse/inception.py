"""Inception stand-in: torch-fidelity's `FeatureExtractorInceptionV3` with random weights, saved as
its weights file (the state-dict layout of weights-inception-2015-12-05-6726825d.pth, fp32)."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock


def random_inception(seed: int = 0):
    """torch-fidelity's InceptionV3 (inception-v3-compat) with He-initialised random convolutions
    (activations stay O(1) through the 94 layers), built without its weight download."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None), \
                mock.patch("torch_fidelity.feature_extractor_inceptionv3.load_state_dict_from_url", lambda *a, **k: {}):
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return net


def write_inception_weights(path, seed: int = 0) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.float().contiguous() for k, v in random_inception(seed).state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path
