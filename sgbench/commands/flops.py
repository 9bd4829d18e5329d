"""`sgbench flops --arch SiT-XL/2 --routes 2-24 --guidance sg --omega 2.5 --gamma-strong 0.5 --gamma-weak 0.9`.

GFLOPs per image of one guided velocity evaluation, averaged over the sampler's evaluations: the
guidance and solver options are `sgbench sample`'s, validated and mapped to branches by the same
code (intervals, omega = 1 and Heun's second evaluation count as they run). `gflops` is fvcore's
count (the paper's tables), `gflops_attn` adds the attention-score matmuls. MaskDiT presets work
too (`--arch MaskDiT-XL/2 --gamma-strong 0.5`, no routes: gamma is the encoder's masking rate);
text-to-image presets need the text token count (`--arch TR-DiT-2.5B ... --text-len 128`; they
keep their own routes, e.g. 2-30, unless --routes is given).
"""

from __future__ import annotations

import argparse

from sgbench.commands.guidance_args import add_guidance_arguments, add_solver_arguments, guidance_config


def register(subparsers) -> argparse.ArgumentParser:
    from sgbench.config import limits as L

    p = subparsers.add_parser(
        "flops",
        help="GFLOPs per image of one guided velocity evaluation (fvcore's count, as the paper's tables)",
        description="GFLOPs per image of one guided velocity evaluation (all branches), averaged over the "
        "sampler's model evaluations; gflops = fvcore's count without attention-score matmuls (the paper's "
        "convention), gflops_attn = with them.",
    )
    m = p.add_argument_group("architecture")
    m.add_argument("--arch", default="SiT-XL/2",
                   help="architecture preset (DiT-XL/2, SiT-B/4, ...; MaskDiT-XL/2, ... without routes; "
                   "text-to-image TR-DiT-2.5B, T2I-shapes, ... with --text-len)")
    m.add_argument("--routes", nargs="*", default=None,
                   help="TREAD routes START-END (0-based, inclusive), e.g. 2-24 (DiT/SiT, T2I). T2I presets "
                   "have their own routes (TR-DiT-2.5B: 2-30), kept unless --routes is given; --routes "
                   "with no value removes them")
    m.add_argument("--text-len", type=L.count_arg(1, 1_000_000), default=None,
                   help="text tokens L the cross-attention and text adapter see (required for T2I archs; "
                   "the frozen text encoder is not counted)")
    m.add_argument("--input-size", type=L.count_arg(1, L.MAX_IMAGE_SIDE), default=None, help="latent side (default 32 = 256 px with SD-VAE)")
    m.add_argument("--num-classes", type=L.count_arg(1, L.MAX_CLASSES), default=None, help="class count (default 1000)")
    add_guidance_arguments(p)
    s = p.add_argument_group("sampling")
    add_solver_arguments(s)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def main(args) -> int:
    import json

    from sgbench.run.flops import gflops_per_image

    cfg = guidance_config(args)
    overrides = {k: v for k, v in (("input_size", args.input_size), ("num_classes", args.num_classes)) if v is not None}
    report = gflops_per_image(args.arch, routes=args.routes, guidance=cfg, steps=args.steps, solver=args.solver,
                              text_len=args.text_len, **overrides)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        branches = ", ".join(f"{g:.3f}" for g in report.per_branch)
        print(f"GFLOPs per image: {report.gflops:.3f}  (branches: {branches}; "
              f"{report.relative_to_unguided:.3f}x the unguided {report.dense_gflops:.3f}); "
              f"with attention-score matmuls: {report.gflops_attn:.3f}")
    return 0
