"""`sgbench convert SRC OUT.safetensors`: make a foreign checkpoint an sgbench file once.

    sgbench convert tread/checkpoints/0400000.pt data/checkpoints/sit-xl2-tread-r2-24.safetensors \
        --arch SiT-XL/2 --routes 2-24 --parametrization edm      # tread train.py: edm; rf.py: rf

The output records the architecture, routes and parametrization, so suites and `sgbench sample`
need only its path. What the source records itself (sgbench metadata, SiT/DiT train args, the
MaskDiT train format) wins; an explicit value that contradicts it is an error.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    from sgbench.commands import choices as C

    p = subparsers.add_parser(
        "convert",
        help="write a tread/SiT/DiT/MaskDiT checkpoint as an sgbench safetensors file that records what it is",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("source", help="checkpoint to convert (CompVis/tread, willisma/SiT, facebookresearch/DiT, "
                   "Anima-Lab/MaskDiT, sgbench train .pt, or any safetensors state dict)")
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--arch", help="architecture preset (e.g. SiT-XL/2, DiT-XL/2, MaskDiT-XL/2) for files "
                   "without sgbench metadata")
    p.add_argument("--family", default="auto", choices=("auto", *C.FAMILIES, *C.FAMILY_ALIASES),
                   help="checkpoint family (default auto: from the file; sit and tread are aliases of dit)")
    p.add_argument("--routes", help="TREAD routes, comma separated (e.g. 2-24); tread files do not record them")
    p.add_argument("--parametrization", default="auto", choices=("auto", *C.PARAMETRIZATIONS),
                   help="what the network predicts; required where the file records none (tread: train.py -> edm, "
                   "rf.py -> rf; SiT -> velocity; DiT -> ddpm)")
    p.add_argument("--num-classes", type=int, help="number of classes if not inferable")
    p.add_argument("--no-ema", action="store_true", help="take the raw weights, not the EMA weights")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow checkpoints holding other Python objects")
    p.add_argument("--force", action="store_true", help="replace an existing OUT")
    return p


def main(args) -> int:
    import json

    from sgbench.models.convert import check_output, convert_checkpoint
    from sgbench.models.loading import ModelSpec

    check_output(args.out, args.source, args.force)  # before the (possibly large) source is read
    routes = [r for r in args.routes.split(",") if r.strip()] if args.routes else None
    spec = ModelSpec(checkpoint=args.source, arch=args.arch, family=args.family, routes=routes,
                     parametrization=args.parametrization, num_classes=args.num_classes,
                     use_ema=not args.no_ema, trust_checkpoint=args.trust_checkpoint)
    out, meta = convert_checkpoint(spec, args.out, force=args.force)
    cfg = meta["config"]
    routes = ",".join(cfg.get("routes") or []) or "none"
    src = meta["converted_from"]
    entry = f" ({src['entry']})" if src.get("entry") else ""
    print(f"{out}: family {meta['family']}, parametrization {meta['parametrization']}, routes {routes}, "
          f"from {src['format']}{entry}")
    print(json.dumps({k: cfg[k] for k in sorted(cfg)}, sort_keys=True))
    return 0
