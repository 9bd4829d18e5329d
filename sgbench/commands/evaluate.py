"""`sgbench evaluate SAMPLES.npz --ref REF.npz --inception-weights PATH`: ADM evaluator drop-in."""

from __future__ import annotations

import argparse

from sgbench.commands import printing_to_stderr


def register(subparsers) -> argparse.ArgumentParser:
    from sgbench.commands.choices import EXTRACTORS
    from sgbench.config import limits as L

    p = subparsers.add_parser(
        "evaluate",
        help="FID/sFID/IS/precision/recall of a sample .npz against a reference (ADM protocol)",
        description="Drop-in for openai/guided-diffusion's evaluations/evaluator.py (note the order: samples first).",
    )
    p.add_argument("samples", help="sample batch: .npz with arr_0 uint8 [N,H,W,3] (arr_1 labels optional), or an image folder")
    p.add_argument("--ref", required=True, help="reference: ADM batch .npz (arr_0, mu, sigma, mu_s, sigma_s), images .npz, or folder")
    p.add_argument("--extractor", default=EXTRACTORS[0], choices=EXTRACTORS,
                   help="feature extractor: inception (default; FID, sFID, IS, ...), dinov2 (FD_DINOv2) or classifier")
    p.add_argument("--inception-weights", help="torch-fidelity Inception weights file (weights-inception-2015-12-05-6726825d.pth)")
    p.add_argument("--dinov2-weights", help="DINOv2 ViT-L/14 weights for --extractor dinov2: torch-hub's "
                   "dinov2_vitl14_pretrain.pth or timm's vit_large_patch14_dinov2.lvd142m model.safetensors")
    p.add_argument("--classifier-weights", help="sgbench classifier .safetensors (for --extractor classifier)")
    p.add_argument("--batch-size", type=L.count_arg(1, L.MAX_BATCH), default=None,
                   help="images per extractor call (default 64 Inception and DINOv2, 256 classifier)")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    p.add_argument("--cache-dir", default=None, help="reference statistics cache (default $SGBENCH_CACHE_DIR or ~/.cache/sgbench)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write cached reference statistics")
    p.add_argument("--no-precision-recall", action="store_true", help="skip precision/recall (saves memory and time)")
    p.add_argument("--distance-dtype", choices=("float16", "float32"), default="float16",
                   help="precision/recall distance precision (ADM: float16 with float32 fallback)")
    p.add_argument("--limit", type=L.count_arg(1, L.MAX_SAMPLES), default=None, help="evaluate only the first N samples")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of ADM's lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (drawn only when stderr is a terminal)")
    return p


def main(args) -> int:
    import json
    import sys

    import numpy as np
    import torch

    from sgbench.errors import UserError
    from sgbench.metrics.accumulator import ImageMetricAccumulator
    from sgbench.metrics.extractors import get_extractor
    from sgbench.metrics.image_io import count_images, iter_images, read_npz_labels
    from sgbench.metrics.reference import load_reference
    from sgbench.metrics.registry import INCEPTION, get, image_columns
    from sgbench.progress import bar, counted

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    weights = {"inception": args.inception_weights, "dinov2": args.dinov2_weights}.get(args.extractor,
                                                                                     args.classifier_weights)
    kwargs = {"weights_path": weights, "device": device}
    if args.batch_size:
        if args.batch_size < 1:
            raise UserError("--batch-size must be positive")
        kwargs["batch_size"] = args.batch_size
    n = count_images(args.samples)  # validates the sample file before loading any network
    log = lambda msg: print(msg, file=sys.stderr)  # noqa: E731  (stdout stays ADM's lines / JSON)
    with printing_to_stderr():
        extractor = get_extractor(args.extractor, **kwargs)
        do_pr = not args.no_precision_recall
        reference = load_reference(args.ref, extractor, cache_dir=args.cache_dir, need_features=do_pr,
                                   batch_size=extractor.batch_size, use_cache=not args.no_cache, log=log,
                                   progress=not args.no_progress)
        n = min(n, args.limit) if args.limit else n
        labels = (read_npz_labels(args.samples, count_images(args.samples))
                  if image_columns(extractor.name).class_acc else None)
        acc = ImageMetricAccumulator(extractor, precision_recall=do_pr, distance_dtype=args.distance_dtype)
        log(f"computing sample features of {n} images from {args.samples} ...")
        done = 0
        sample_bar = bar(n, "sample features", enabled=not args.no_progress)
        for batch in counted(iter_images(args.samples, 256, limit=n), sample_bar):
            acc.update(batch, None if labels is None else labels[done : done + len(batch)])
            done += len(batch)
        if do_pr and reference.features is not None:  # k-NN distances of every pair: the slow part on a CPU
            log(f"computing precision/recall ({len(reference.features)} reference x {done} sample features) ...")
        metrics = acc.compute(reference)
    if args.json:
        print(json.dumps({"samples": str(args.samples), "ref": str(args.ref), "extractor": extractor.name,
                          "n_samples": done, **{k: float(np.float64(v)) for k, v in metrics.items()}}))
    elif extractor.name == INCEPTION:  # ADM's lines, in its order and wording
        for key, value in metrics.items():
            print(f"{get(key).title}: {value}")
    else:
        for key, value in metrics.items():
            print(f"{key}: {value}")
    return 0
