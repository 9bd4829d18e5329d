"""Acceptance table of the quickstart model: unguided vs CFG vs SG vs CFG+SG on the shapes data.

    .venv/bin/python benchmarks/quickstart_table.py [--samples 1000] [--seeds 0 1 2] [--steps 20]

Paired seeds: every configuration samples the same noise, labels (balanced) and per-sample token
generators for a given seed, so differences between rows are paired differences. Quality is the
Fréchet distance of the domain classifier's 128-d features to held-out real images (FD_classifier;
lower is better), faithfulness is the classifier's accuracy on the requested class, cost is
analytic FLOPs by processed tokens relative to one dense forward per step (`gflops_per_image`).
Prints a Markdown table (mean ± std over seeds; ΔFD = paired difference to unguided).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sgbench.data import shapes_reference_images  # noqa: E402
from sgbench.guidance import GuidanceConfig, build_rule  # noqa: E402
from sgbench.metrics import frechet_distance  # noqa: E402
from sgbench.metrics.classifier import load_classifier  # noqa: E402
from sgbench.models.loading import ModelSpec, load_denoiser  # noqa: E402
from sgbench.run.flops import gflops_per_image  # noqa: E402
from sgbench.sampling.decode import PixelDecoder  # noqa: E402
from sgbench.sampling.generate import generate  # noqa: E402

ASSETS = ROOT / "sgbench" / "assets" / "quickstart"

# (label, GuidanceConfig kwargs). Both SG branches are conditional; CFG+SG's weak branch is null.
CONFIGS = [
    ("unguided", dict(method="none")),
    ("unguided γ=0.5", dict(method="none", gamma_strong=0.5)),
    ("CFG ω=1.5", dict(method="cfg", omega=1.5)),
    ("CFG ω=2", dict(method="cfg", omega=2.0)),
    ("CFG ω=3", dict(method="cfg", omega=3.0)),
    ("SG (0.5, 0.9) ω=3", dict(method="sg", omega=3.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("SG (0.5, 0.9) ω=6", dict(method="sg", omega=6.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("SG (0.5, 0.9) ω=9", dict(method="sg", omega=9.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("SG (0.5, 0.9) ω=15", dict(method="sg", omega=15.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("SG (0, 0.9) ω=3", dict(method="sg", omega=3.0, gamma_strong=0.0, gamma_weak=0.9)),
    ("SG (0, 0.9) ω=6", dict(method="sg", omega=6.0, gamma_strong=0.0, gamma_weak=0.9)),
    ("SG (0, 0.5) ω=4", dict(method="sg", omega=4.0, gamma_strong=0.0, gamma_weak=0.5)),
    ("CFG+SG (0.5, 0.9) ω=2", dict(method="cfg+sg", omega=2.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("CFG+SG (0, 0.5) ω=2", dict(method="cfg+sg", omega=2.0, gamma_strong=0.0, gamma_weak=0.5)),
]
# Run only with --weak (an early checkpoint of the same run as the weak network).
AG_CONFIGS = [
    ("AG ω=2 (weak: early ckpt)", dict(method="ag", omega=2.0)),
    ("AG+SG (0.5, 0.9) ω=2 (weak: early ckpt)", dict(method="ag+sg", omega=2.0, gamma_strong=0.5, gamma_weak=0.9)),
    ("SG_FID preset ω=2.5 (weak: early ckpt)", dict(method="ag+sg", omega=2.5, gamma_strong="cosine:0.0:0.6",
                                                    gamma_weak="cosine:0.6:0.0")),
]


def rel_flops(model_config, kw: dict, steps: int) -> float:
    """GFLOPs relative to the unguided forward (the weak network of ag: the same architecture)."""
    return gflops_per_image(model_config, guidance=GuidanceConfig(**kw), steps=steps).relative_to_unguided


@torch.no_grad()
def classify(clf, images_nhwc: np.ndarray, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    feats, preds = [], []
    for s in range(0, len(images_nhwc), batch):
        x = torch.from_numpy(images_nhwc[s : s + batch]).permute(0, 3, 1, 2).contiguous()
        f = clf.features(x)
        feats.append(f.double().numpy())
        preds.append(clf.logits_from_features(f).argmax(1).numpy())
    return np.concatenate(feats), np.concatenate(preds)


def sd(a) -> float:
    """Sample standard deviation over seeds (0 for a single seed)."""
    a = np.asarray(a, dtype=np.float64)
    return float(a.std(ddof=1)) if a.size > 1 else 0.0


def gaussian(f: np.ndarray):
    return f.mean(0), np.cov(f, rowvar=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ASSETS / "model.safetensors"))
    ap.add_argument("--classifier", default=str(ASSETS / "classifier.safetensors"))
    ap.add_argument("--weak", default="", help="early checkpoint for the AG / AG+SG rows (e.g. model_step1000.safetensors)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--n-ref", type=int, default=5000, help="held-out real images for the reference statistics")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    ap.add_argument("--only", nargs="*", default=None, help="labels of the configurations to run (default all)")
    ap.add_argument("--json", default="", help="also write all per-seed numbers to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    den = load_denoiser(ModelSpec(checkpoint=args.model))
    clf = load_classifier(args.classifier)
    ref_images, ref_labels = shapes_reference_images(args.n_ref)
    ref_feats, ref_pred = classify(clf, ref_images)
    mu_r, sig_r = gaussian(ref_feats)
    half = args.n_ref // 2
    floor = frechet_distance(*gaussian(ref_feats[:half]), *gaussian(ref_feats[half:]))
    print(f"classifier accuracy on {args.n_ref} held-out real images: {(ref_pred == ref_labels).mean():.4f}; "
          f"real-vs-real FD ({half} vs {args.n_ref - half}): {floor:.1f}", flush=True)

    autocast = torch.bfloat16 if args.precision == "bf16" else None
    nets = {"main": den}
    all_configs = CONFIGS
    if args.weak:
        nets["weak"] = load_denoiser(ModelSpec(checkpoint=args.weak))
        all_configs = CONFIGS + AG_CONFIGS
    configs = [c for c in all_configs if args.only is None or c[0] in args.only]
    results = {}
    for label, kw in configs:
        rule = build_rule(GuidanceConfig(**kw))
        per_seed = []
        t0 = time.perf_counter()
        for seed in args.seeds:
            imgs, labs = [], []
            # balanced labels (i % 10), as when docs/training.md's table was measured; suites default to random
            for _, im, lab in generate(nets, rule, PixelDecoder(), args.samples, seed, args.batch,
                                       steps=args.steps, conditions="balanced", autocast=autocast):
                imgs.append(im)
                labs.append(lab)
            imgs, labs = np.concatenate(imgs), np.concatenate(labs)
            feats, pred = classify(clf, imgs)
            per_seed.append({"seed": seed, "fd": frechet_distance(*gaussian(feats), mu_r, sig_r),
                             "acc": float((pred == labs).mean())})
        wall = time.perf_counter() - t0
        results[label] = {"config": kw, "rel_flops": rel_flops(den.backbone.config, kw, args.steps),
                          "per_seed": per_seed, "wall_s": wall}
        fds = [r["fd"] for r in per_seed]
        print(f"{label:24s} FD {np.mean(fds):8.1f} ± {sd(fds):6.1f}  acc {np.mean([r['acc'] for r in per_seed]):.3f}"
              f"  ({wall:.0f} s)", flush=True)

    base = results.get("unguided")
    lines = [
        f"{args.samples} samples per seed, seeds {args.seeds}, {args.steps} Euler steps, "
        f"{args.precision}, FD_classifier vs {args.n_ref} held-out real images (real-vs-real floor {floor:.1f})",
        "",
        "| config | rel. GFLOPs | FD_classifier | ΔFD vs unguided (paired) | class acc. | wins vs unguided |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in results.items():
        fds = np.array([s["fd"] for s in r["per_seed"]])
        accs = np.array([s["acc"] for s in r["per_seed"]])
        if base is not None:
            bfd = np.array([s["fd"] for s in base["per_seed"]])
            d = fds - bfd
            delta = f"{d.mean():+.1f} ± {sd(d):.1f}"
            wins = f"{int((d < 0).sum())}/{len(d)}" if label != "unguided" else "–"
        else:
            delta, wins = "n/a", "n/a"
        lines.append(f"| {label} | {r['rel_flops']:.2f} | {fds.mean():.1f} ± {sd(fds):.1f} | {delta} | "
                     f"{accs.mean():.3f} ± {sd(accs):.3f} | {wins} |")
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "fd_floor": floor, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
