"""The guidance and solver options every command that samples (or counts sampling) takes.

`sgbench sample` and `sgbench flops` register them here and validate them through the same
`GuidanceConfig` as a suite's `methods:` entry (sgbench.guidance.vocabulary), so a setting means
the same everywhere. Cheap at import (no torch): commands register their parsers with it.
"""

from __future__ import annotations

import argparse

from sgbench.errors import FieldError, UserError
from sgbench.guidance.vocabulary import METHODS, OMEGA_MAX, PRESETS, SEARCHABLE, GuidanceConfig, preset

# GuidanceConfig field -> its option
FLAGS = {"method": "--guidance", "omega": "--omega", "gamma_strong": "--gamma-strong", "gamma_weak": "--gamma-weak",
         "interval": "--interval", "preset": "--preset"}


def add_guidance_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("guidance")
    g.add_argument("--guidance", default=None, choices=tuple(METHODS),
                   help="guidance method (default none: the strong branch alone, unguided)")
    g.add_argument("--preset", choices=tuple(PRESETS),
                   help="a named setting of the paper (options given explicitly override its values)")
    g.add_argument("--omega", type=float,
                   help=f"guidance scale in [0, {OMEGA_MAX:g}]; required for a guided method without --preset "
                   "(1 = the strong branch alone)")
    g.add_argument("--gamma-strong", help="sparsity of the strong branch (MaskDiT: its masking rate): "
                   "float or linear:A:B / cosine:A:B over the steps (default 0)")
    g.add_argument("--gamma-weak", help=f"sparsity of the weak branch ({', '.join(SEARCHABLE)})")
    g.add_argument("--interval", help="guide only for t in T_LO,T_HI (t=0 noise, t=1 data)")


def add_solver_arguments(group) -> None:
    from sgbench.config import limits as L

    group.add_argument("--steps", type=L.count_arg(1, L.MAX_STEPS), default=40, help="solver steps (default 40)")
    from sgbench.commands.choices import SOLVERS

    group.add_argument("--solver", default=SOLVERS[0], choices=SOLVERS, help=f"ODE solver (default {SOLVERS[0]})")


def guidance_config(args) -> GuidanceConfig:
    """The validated GuidanceConfig of the options; errors name the option (`--gamma-weak: ...`)."""
    fields = dict(method=args.guidance, omega=args.omega, gamma_strong=args.gamma_strong,
                  gamma_weak=args.gamma_weak, interval=args.interval)
    try:
        if args.preset:
            return preset(args.preset, **fields)
        cfg = GuidanceConfig(**{k: v for k, v in fields.items() if v is not None})
    except FieldError as e:
        raise UserError(f"{FLAGS.get(e.key, e.key)}: {e.message}") from None
    if cfg.spec.guided and args.omega is None:
        raise UserError(f"--omega: required for guidance {cfg.method} (the guidance scale, e.g. 2.5; "
                        "1 evaluates the strong branch alone)")
    return cfg
