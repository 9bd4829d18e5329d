"""GenEval stand-ins: its prompts file, the Mask2Former detector (mmdet's own GenEval config with
random weights) and a tiny CLIP for the colour check.

- `write_metadata`: evaluation_metadata.jsonl in GenEval's format, one prompt per tag.
- `mask2former_config`: the Mask2Former Swin-S config GenEval uses, as shipped inside mmdet
  (a real file, not a stand-in); `write_mask2former` saves that model with random weights as an
  mmdet checkpoint ({'state_dict', 'meta': {'dataset_meta': {'classes'}}}).
- `write_tiny_clip`: an open_clip model config (registered with `open_clip.add_model_config`)
  and its random weights; loaded by open_clip's `create_model_and_transforms(arch, pretrained=file)`
  like OpenAI's ViT-L/14 file.
- `ensure_mmcv_ops`: mmcv-lite (mmcv without compiled ops) runs Mask2Former on the CPU, but
  mmdet imports `mmcv._ext`; a module whose every op raises stands in, so a rehearsal also
  proves that no compiled op ran. A GPU run needs the full mmcv (README, "GenEval").
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

MASK2FORMER = ("mask2former", "mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py")
CLIP_ARCH = "SgbenchRehearsalCLIP"
CLIP_CONFIG = {"embed_dim": 32, "quick_gelu": True,
               "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
               "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}

# One prompt per GenEval tag, in the format of djghosh13/geneval prompts/evaluation_metadata.jsonl.
PROMPTS = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {"tag": "two_object", "include": [{"class": "toilet", "count": 1}, {"class": "bicycle", "count": 1}],
     "prompt": "a photo of a toilet and a bicycle"},
    {"tag": "counting", "include": [{"class": "clock", "count": 2}], "exclude": [{"class": "clock", "count": 3}],
     "prompt": "a photo of two clocks"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
    {"tag": "position", "include": [{"class": "dog", "count": 1},
                                    {"class": "cat", "count": 1, "position": ["right of", 0]}],
     "prompt": "a photo of a cat right of a dog"},
    {"tag": "color_attr", "include": [{"class": "bus", "count": 1, "color": "yellow"},
                                      {"class": "umbrella", "count": 1, "color": "blue"}],
     "prompt": "a photo of a yellow bus and a blue umbrella"},
]


def _write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_metadata(path) -> Path:
    return _write_text(path, "".join(json.dumps(p) + "\n" for p in PROMPTS))


# ----------------------------------------------------------------------------- mmcv / mmdet


def raising_mmcv_ops():
    """A module standing in for `mmcv._ext` whose every attribute is an op that raises."""
    import importlib.machinery
    import types

    class RaisingOps(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)

            def op(*args, **kwargs):
                raise RuntimeError(f"compiled mmcv op {name} called: install the full mmcv (README, 'GenEval')")

            return op

    stub = RaisingOps("mmcv._ext")
    stub.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # pkgutil probes it
    return stub


def ensure_mmcv_ops() -> bool:
    """Install `raising_mmcv_ops` as mmcv._ext when mmcv has no compiled ops; True if installed."""
    import importlib

    try:
        importlib.import_module("mmcv._ext")
        return False
    except ImportError:
        sys.modules["mmcv._ext"] = raising_mmcv_ops()
        return True


def mask2former_config() -> Path:
    """mmdet's Mask2Former Swin-S COCO config (GenEval's detector); UserError without mmdet."""
    from sgbench.errors import UserError
    from sgbench.t2i.geneval_backends import GENEVAL_EXTRA

    try:
        import mmdet
    except ImportError as e:
        raise UserError(f"GenEval's detector needs the optional extra {GENEVAL_EXTRA} ({e}); a real run needs "
                        "it too (on CPU: make geneval-cpu)") from None
    path = Path(mmdet.__file__).parent.joinpath(".mim", "configs", *MASK2FORMER)
    if not path.is_file():
        raise UserError(f"mmdet {mmdet.__version__} ships no {'/'.join(MASK2FORMER)} (GenEval's detector config)")
    return path


def write_mask2former(path, config, seed: int = 0) -> Path:
    """The model of mmdet `config` with random weights, as an mmdet checkpoint file."""
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules

    from sgbench.t2i.geneval import COCO_OBJECT_NAMES

    register_all_modules()
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.init_cfg = None  # no pretrained download
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MODELS.build(cfg.model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": list(COCO_OBJECT_NAMES)}}}, tmp)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------- CLIP


def register_tiny_clip(directory) -> str:
    """Write (if needed) and register the tiny CLIP's model config; returns its arch name."""
    import open_clip

    config = Path(directory) / f"{CLIP_ARCH}.json"
    if not config.is_file():
        _write_text(config, json.dumps(CLIP_CONFIG))
    open_clip.add_model_config(config)
    return CLIP_ARCH


def write_tiny_clip(path, seed: int = 0) -> Path:
    """Random weights of the tiny CLIP (its config registered beside them) at `path`."""
    import open_clip
    import torch

    path = Path(path)
    register_tiny_clip(path.parent)
    import logging

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # "no pretrained weights loaded": random on purpose
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = open_clip.create_model(CLIP_ARCH)
    finally:
        logging.getLogger().setLevel(quiet)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return path
