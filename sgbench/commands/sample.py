"""`sgbench sample`: generate an ADM-format .npz with any guidance rule, on 1..K workers.

    sgbench sample --checkpoint sit-xl2-r2-24.safetensors --vae sd-vae-ft-ema \
        --guidance sg --omega 2.5 --gamma-strong 0.5 --gamma-weak 0.9 --num-samples 50000 \
        --batch-size 125 --out samples.npz
    torchrun --nproc_per_node 8 -m sgbench.cli sample ...   # same options, same bytes
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sgbench.commands import printing_to_stderr
from sgbench.commands.guidance_args import add_guidance_arguments, add_solver_arguments, guidance_config


def register(subparsers) -> argparse.ArgumentParser:
    from sgbench.commands import choices as C
    from sgbench.config import limits as L

    p = subparsers.add_parser(
        "sample",
        help="generate samples with a guidance rule into an ADM-format .npz (resumable, torchrun-ready)",
        description=__doc__.splitlines()[0],
    )
    m = p.add_argument_group("model")
    m.add_argument("--checkpoint", help="model checkpoint (sgbench safetensors, DiT/SiT, tread, MaskDiT)")
    m.add_argument("--arch", help="architecture preset (e.g. SiT-XL/2) when the file carries no sgbench metadata")
    m.add_argument("--parametrization", default="auto", choices=("auto", *C.PARAMETRIZATIONS),
                   help="what the network predicts, for files that do not record it (default auto: the file's record)")
    m.add_argument("--routes", help="TREAD routes, comma separated (e.g. 2-24)")
    m.add_argument("--num-classes", type=L.count_arg(1, L.MAX_CLASSES), help="number of classes if not inferable")
    m.add_argument("--trust-checkpoint", action="store_true", help="allow checkpoints pickling Python objects other than tensors, containers and argparse Namespaces")
    m.add_argument("--weak-checkpoint", help="earlier checkpoint for ag / ag+sg (same architecture options)")
    add_guidance_arguments(p)
    s = p.add_argument_group("sampling")
    add_solver_arguments(s)
    s.add_argument("--num-samples", type=L.count_arg(1, L.MAX_SAMPLES), required=True, metavar="N",
                   help="images to generate (50000 for the ADM protocol's FID@50k)")
    s.add_argument("--batch-size", type=L.count_arg(1, L.MAX_BATCH), default=32, help="per worker; also the shard size (default 32)")
    s.add_argument("--seed", type=L.count_arg(0, 2**63 - 1), default=0,
                   help="image i's noise and label come from (seed, i): the same bytes on any worker count (default 0)")
    s.add_argument("--labels", default=C.LABEL_MODES[0], choices=C.LABEL_MODES,
                   help="class labels: random (uniform from (seed, i), as ADM/DiT/SiT; default) or balanced "
                        "(index %% classes)")
    s.add_argument("--vae", help="diffusers AutoencoderKL directory for latent models (e.g. sd-vae-ft-ema)")
    s.add_argument("--rounding", default=C.ROUNDINGS[0], choices=C.ROUNDINGS,
                   help="pixels to uint8: round (DiT/SiT, default) or truncate (MaskDiT/tread)")
    s.add_argument("--device", default="auto", choices=C.DEVICES,
                   help="auto (default: cuda if available, else cpu); cuda is this worker's cuda:LOCAL_RANK")
    s.add_argument("--out", required=True, help="output FILE.npz in ADM's layout (arr_0 uint8 NHWC images, arr_1 labels)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    s.add_argument("--no-progress", action="store_true", help="no progress bar (drawn only when stderr is a terminal)")
    return p


def model_spec(args, checkpoint):
    from sgbench.models.loading import ModelSpec

    routes = [r for r in args.routes.split(",") if r.strip()] if args.routes else None
    return ModelSpec(
        checkpoint=checkpoint,
        arch=args.arch,
        parametrization=args.parametrization,
        routes=routes,
        num_classes=args.num_classes,
        trust_checkpoint=args.trust_checkpoint,
    )


def _check_args(args) -> None:
    from sgbench.errors import UserError

    if args.num_samples < 1:
        raise UserError(f"--num-samples must be >= 1, got {args.num_samples}")
    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.out.endswith(".npz"):
        raise UserError(f"--out must name a .npz file, got {args.out}")
    if Path(args.out).exists() and not args.overwrite:
        raise UserError(f"{args.out} exists; pass --overwrite to replace it")
    if not Path(args.out).expanduser().resolve().parent.is_dir():
        raise UserError(f"output directory does not exist: {Path(args.out).parent}")


def main(args) -> int:
    import torch

    from sgbench.errors import UserError
    from sgbench.guidance import build_rule
    from sgbench.sampling import PixelDecoder, VAEDecoder, generate
    from sgbench.sampling.distributed import dist_env, process_group, worker_device
    from sgbench.sampling.shards import run_sharded
    from sgbench.sampling.solvers import check_rule

    _check_args(args)
    cfg = guidance_config(args)
    rule = build_rule(cfg)
    check_rule(rule, args.steps, args.solver)  # also: steps >= 1, a known solver
    if cfg.needs_weak_network and not args.weak_checkpoint:
        raise UserError(f"guidance {cfg.method} needs --weak-checkpoint (an earlier checkpoint of the same run)")
    if args.checkpoint is None and args.arch is None:
        raise UserError("pass --checkpoint (or --arch for a randomly initialised model)")

    env = dist_env()
    device = worker_device(env, args.device)
    from sgbench.models.loading import load_denoiser

    torch.manual_seed(0)  # a randomly initialised --arch model must be the same on every worker
    denoisers = {"main": load_denoiser(model_spec(args, args.checkpoint), device)}
    if cfg.needs_weak_network:
        denoisers["weak"] = load_denoiser(model_spec(args, args.weak_checkpoint), device)
    decoder = VAEDecoder(args.vae, device, rounding=args.rounding) if args.vae else PixelDecoder(args.rounding)
    decoder.check(denoisers["main"].latent_shape)

    manifest = {
        "format": 1,
        "checkpoint": args.checkpoint,
        "weak_checkpoint": args.weak_checkpoint if cfg.needs_weak_network else None,
        "arch": args.arch,
        "parametrization": denoisers["main"].parametrization,  # as resolved (recorded by the file, or given)
        "routes": args.routes,
        "guidance": rule.describe(),
        "steps": args.steps,
        "solver": args.solver,
        "num_samples": args.num_samples,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "labels": args.labels,
        "vae": args.vae,
        "rounding": args.rounding,
        "device_type": device.type,
    }

    def produce(indices):
        return generate(
            denoisers, rule, decoder, args.num_samples, args.seed, args.batch_size, steps=args.steps,
            solver=args.solver, conditions=args.labels, device=device, indices=indices,
        )

    def log(msg):
        print(f"sgbench sample: {msg}", file=sys.stderr)

    with process_group(env, device), printing_to_stderr():  # stdout: the .npz path only
        out = run_sharded(produce, Path(args.out), args.num_samples, args.batch_size, manifest, env, log,
                          progress=not args.no_progress)
    if env.is_main:
        print(out)
    return 0
