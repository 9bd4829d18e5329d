"""`sgbench flops --arch SiT-XL/2 --routes 2-24 --guidance sg --gamma-strong 0.5 --gamma-weak 0.9 --steps 40`.

MaskDiT presets work too (`--arch MaskDiT-XL/2 --gamma-strong 0.5`, no routes): gamma is the
masking rate of the encoder. Text-to-image presets need the text token count:
`--arch TR-DiT-2.5B --guidance cfg+sg --gamma-strong 0.2 --gamma-weak 0.7 --steps 50 --text-len 128`
(T2I presets keep their own routes, e.g. 2-30, unless --routes is given)."""

from __future__ import annotations

import argparse

METHODS = ("none", "cfg", "sg", "cfg+sg", "ag", "ag+sg", "icg")


def register(subparsers) -> argparse.ArgumentParser:
    from sgbench.config import limits as L

    p = subparsers.add_parser(
        "flops",
        help="GFLOPs per image of one guided velocity evaluation (fvcore convention)",
        description="GFLOPs per image of one guided velocity evaluation (all branches), averaged over the "
        "sampling steps. A gamma is a number or 'cosine:START:END' / 'linear:START:END' over the steps.",
    )
    p.add_argument("--arch", default="SiT-XL/2",
                   help="architecture preset (DiT-XL/2, SiT-B/4, ...; MaskDiT-XL/2, ... without routes; "
                   "text-to-image TR-DiT-2.5B, T2I-shapes, ... with --text-len)")
    p.add_argument("--routes", nargs="*", default=None,
                   help="TREAD routes START-END (0-based, inclusive), e.g. 2-24 (DiT/SiT, T2I). T2I presets "
                   "have their own routes (TR-DiT-2.5B: 2-30), kept unless --routes is given; --routes "
                   "with no value removes them")
    p.add_argument("--text-len", type=L.count_arg(1, 1_000_000), default=None,
                   help="text tokens L the cross-attention and text adapter see (required for T2I archs; "
                   "the frozen text encoder is not counted)")
    p.add_argument("--guidance", choices=METHODS, default="none")
    p.add_argument("--gamma-strong", default=None,
                   help="sparsity of the strong (conditional) branch (MaskDiT: its masking rate)")
    p.add_argument("--gamma-weak", default=None, help="sparsity of the weak branch (sg, cfg+sg, ag+sg)")
    p.add_argument("--steps", type=L.count_arg(1, L.MAX_STEPS), default=40, help="sampling steps (schedules are evaluated per step)")
    p.add_argument("--input-size", type=L.count_arg(1, L.MAX_IMAGE_SIDE), default=None, help="latent side (default 32 = 256 px with SD-VAE)")
    p.add_argument("--num-classes", type=L.count_arg(1, L.MAX_CLASSES), default=None, help="class count (default 1000)")
    p.add_argument("--no-attention", action="store_true",
                   help="leave out attention-score products (fvcore's plain count of an SDPA model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(args) -> int:
    import json

    from sgbench.metrics.flops import gflops_per_image

    overrides = {k: v for k, v in (("input_size", args.input_size), ("num_classes", args.num_classes)) if v is not None}
    report = gflops_per_image(
        args.arch,
        routes=args.routes,
        guidance=args.guidance,
        gamma_strong=args.gamma_strong,
        gamma_weak=args.gamma_weak,
        steps=args.steps,
        attention=not args.no_attention,
        text_len=args.text_len,
        **overrides,
    )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        branches = ", ".join(f"{g:.3f}" for g in report.per_branch)
        print(f"GFLOPs per image: {report.gflops:.3f}  (branches: {branches}; "
              f"{report.relative_to_unguided:.3f}x the unguided {report.dense_gflops:.3f})")
    return 0
