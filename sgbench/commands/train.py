"""`sgbench train CONFIG.yaml`: train a model (or the quickstart classifier) from a YAML config."""

from __future__ import annotations


def register(subparsers):
    from sgbench.config.limits import MAX_TRAIN_STEPS, count_arg

    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML config (torchrun for several processes)",
        description="Train from a YAML config. Resumes from <output.dir>/checkpoints/latest.pt when present. "
        "The final weights go to output.export under output.dir (or --export PATH); an existing file "
        "is replaced only with --force, and nothing is written inside the installed sgbench package. "
        "Multi-process: torchrun --nproc_per_node=N -m sgbench.cli train CONFIG.yaml",
    )
    p.add_argument("config", help="training config YAML (see suites/train_quickstart.yaml)")
    p.add_argument("--steps", type=count_arg(1, MAX_TRAIN_STEPS), default=None, help="override train.steps")
    p.add_argument("--output-dir", default=None, help="override output.dir (the export goes there too)")
    p.add_argument("--export", default=None, metavar="PATH",
                   help="write the final weights to PATH instead of output.export (relative to the current directory)")
    p.add_argument("--force", action="store_true", help="replace an existing export file")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="allow training checkpoints that hold Python objects (unpickling runs code: only "
                        "for files you made; docs/reliability.md, 'What sgbench trusts')")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log.jsonl is still written)")
    p.add_argument(
        "--export-step",
        nargs=2,
        metavar=("STEP", "OUT"),
        default=None,
        help="do not train: export the kept checkpoint of STEP (EMA weights) to OUT.safetensors "
        "(e.g. an early model as the weak network of autoguidance)",
    )
    return p


def main(args) -> int:
    import json
    import os

    from sgbench.train import load_train_config, parse_train_config, train

    cfg, raw = load_train_config(args.config)
    if args.export_step is not None:
        return _export_step(cfg, *args.export_step, force=args.force, trust=args.trust_checkpoint)
    if args.steps is not None or args.output_dir is not None or args.no_resume or args.export is not None:
        raw = json.loads(json.dumps(raw))
        if args.steps is not None:
            raw.setdefault("train", {})["steps"] = args.steps
        if args.output_dir is not None:
            raw.setdefault("output", {})["dir"] = args.output_dir
        if args.no_resume:
            raw.setdefault("output", {})["resume"] = False
        if args.export is not None:  # a command-line path: relative to the current directory
            raw.setdefault("output", {})["export"] = os.path.abspath(os.path.expanduser(args.export))
        cfg = parse_train_config(raw)
    summary = train(cfg, raw, progress=not args.no_progress, trust_checkpoint=args.trust_checkpoint, force=args.force)
    if summary:
        print(json.dumps(summary, indent=2))
    return 0


def _export_step(cfg, step: str, out: str, force: bool = False, trust: bool = False) -> int:
    from sgbench.config.files import check_output_file
    from sgbench.errors import UserError
    from sgbench.train.checkpoint import ckpt_dir, kept_name
    from sgbench.train.export import export_checkpoint

    try:
        n = int(step)
    except ValueError:
        raise UserError(f"--export-step: STEP must be an integer, got {step!r}") from None
    path = ckpt_dir(cfg.output.dir) / kept_name(n)
    if not path.is_file():
        raise UserError(f"no kept checkpoint for step {n}: {path} (kept steps follow train.keep_every / keep_steps)")
    target = check_output_file(out, "--export-step OUT", force)
    print(f"exported {path} -> {export_checkpoint(path, target, trust=trust)}")
    return 0
