"""GenEval's models: the Mask2Former detector (mmdet 3.x) and the CLIP colour classifier.

Both are optional and imported lazily. GenEval ran mmdet 2.x, whose detectors return per-class
arrays; mmdet 3.x returns a `DetDataSample`, adapted here by `instances_to_per_class`.
The colour classifier follows clip_benchmark's zero-shot recipe as GenEval calls it: per colour
the 3 templates' text embeddings are L2-normalised, averaged and normalised again; each object
is pasted on a grey (#999) canvas through its mask, cropped to its box, and classified by the
largest cosine similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sgbench.errors import UserError
from sgbench.t2i.geneval import COCO_OBJECT_NAMES, COLOR_TEMPLATES, COLORS, Detector, GenEvalOptions

GENEVAL_EXTRA = "mmdet 3.x with mmcv (pip install 'mmdet>=3,<3.4' 'mmcv>=2.0,<2.2' mmengine)"


def instances_to_per_class(instances, num_classes: int):
    """mmdet 3.x `pred_instances` (bboxes [n,4], scores [n], labels [n], masks [n,H,W]) ->
    mmdet 2.x layout: bbox[k] float32 [n_k, 5] (x1, y1, x2, y2, score), segm[k] list of bool masks
    (None when the model predicts no masks). Order within a class is the model's order."""

    def np_(x):
        return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)

    boxes = np_(instances.bboxes).astype(np.float32).reshape(-1, 4)
    scores = np_(instances.scores).astype(np.float32).reshape(-1)
    labels = np_(instances.labels).astype(np.int64).reshape(-1)
    masks = getattr(instances, "masks", None)
    masks = None if masks is None else np_(masks).astype(bool)
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"detector label {int(labels.max())} outside the {num_classes} object names")
    bbox, segm = [], ([] if masks is not None else None)
    for k in range(num_classes):
        sel = np.flatnonzero(labels == k)
        bbox.append(np.concatenate([boxes[sel], scores[sel, None]], axis=1))
        if segm is not None:
            segm.append([masks[i] for i in sel])
    return bbox, segm


class MMDetDetector(Detector):
    """Mask2Former (or any mmdet 3.x detector) from a config file and a checkpoint."""

    def __init__(self, config, checkpoint, device: str = "cpu", classnames: Sequence[str] = COCO_OBJECT_NAMES):
        config, checkpoint = Path(config).expanduser(), Path(checkpoint).expanduser()
        if not config.is_file():
            raise UserError(f"detector config not found: {config} (set --detector-config, e.g. "
                            "mmdet/.mim/configs/mask2former/mask2former_swin-s-p4-w7-224_8xb2-lsj-50e_coco.py)")
        if not checkpoint.is_file():
            raise UserError(f"detector checkpoint not found: {checkpoint} (set --detector-checkpoint, "
                            "mask2former_swin-s-p4-w7-224_lsj_8x2_50e_coco.pth)")
        try:
            from mmdet.apis import inference_detector, init_detector
        except ImportError as e:
            raise UserError(f"GenEval's detector needs the optional extra {GENEVAL_EXTRA} ({e})") from None
        self._infer = inference_detector
        self.model = init_detector(str(config), str(checkpoint), device=device)
        self.classnames = list(classnames)

    def __call__(self, image):
        sample = self._infer(self.model, np.asarray(image.convert("RGB"))[:, :, ::-1].copy())  # mmdet wants BGR
        return instances_to_per_class(sample.pred_instances, len(self.classnames))


class ClipColorClassifier:
    """GenEval's colour check: CLIP zero-shot over its 10 colours and 3 templates."""

    def __init__(self, model, preprocess, tokenizer, device: str = "cpu", options: Optional[GenEvalOptions] = None,
                 batch_size: int = 16):
        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.device, self.options, self.batch_size = device, options or GenEvalOptions(), batch_size
        self._classifiers = {}

    def text_classifier(self, classname: str):
        import torch
        import torch.nn.functional as F

        if classname not in self._classifiers:
            weights = []
            with torch.no_grad():
                for color in COLORS:
                    texts = [t.format(c=color, classname=classname) for t in COLOR_TEMPLATES]
                    emb = self.model.encode_text(self.tokenizer(texts).to(self.device))
                    emb = F.normalize(emb, dim=-1).mean(dim=0)
                    weights.append(emb / emb.norm())
            self._classifiers[classname] = torch.stack(weights, dim=1)
        return self._classifiers[classname]

    def crops(self, image, objects):
        from PIL import Image

        image = image.convert("RGB")
        if self.options.bgcolor == "original":
            blank = image.copy()
        else:
            blank = Image.new("RGB", image.size, color=self.options.bgcolor)
        out = []
        for box, mask in objects:
            crop = image
            if mask is not None:
                if tuple(image.size[::-1]) != tuple(mask.shape):
                    raise UserError(f"mask shape {tuple(mask.shape)} does not match image {image.size[::-1]}")
                crop = Image.composite(image, blank, Image.fromarray(np.asarray(mask, dtype=bool)))
            if self.options.crop:
                crop = crop.crop(tuple(float(v) for v in box[:4]))
            out.append(crop)
        return out

    def __call__(self, image, objects, classname: str) -> list[str]:
        import torch
        import torch.nn.functional as F

        clf = self.text_classifier(classname)
        crops = self.crops(image, objects)
        preds = []
        with torch.no_grad():
            for i in range(0, len(crops), self.batch_size):
                x = torch.stack([self.preprocess(c) for c in crops[i : i + self.batch_size]]).to(self.device)
                feats = F.normalize(self.model.encode_image(x), dim=-1)
                preds.append((100.0 * feats @ clf).argmax(1))
        return [COLORS[int(i)] for i in torch.cat(preds)] if preds else []


def load_clip_color_classifier(weights, arch: str = "ViT-L-14-quickgelu", device: str = "cpu",
                               options: Optional[GenEvalOptions] = None) -> ClipColorClassifier:
    """open_clip model from a local weights file. OpenAI's ViT-L/14 weights need the quick-GELU
    variant when loaded from a file (open_clip only switches it on for its 'openai' tag)."""
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise UserError(f"CLIP weights not found: {weights} (set --clip-weights to OpenAI ViT-L-14 weights, "
                        "e.g. open_clip's ViT-L-14 'openai' file)")
    try:
        import open_clip
    except ImportError:
        raise UserError("GenEval's colour classifier needs open_clip (pip install open_clip_torch)") from None
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=str(weights), device=device)
    except RuntimeError as e:
        raise UserError(f"cannot load CLIP weights {weights} as {arch}: {str(e).splitlines()[0]}") from None
    return ClipColorClassifier(model, preprocess, open_clip.get_tokenizer(arch), device, options)
