"""Upper bounds of every size a user can ask for (suite keys and command-line options).

A typo such as `steps: 1000000000000` must be a one-line error, not an allocation that takes the
machine down or a run that never ends. Each bound is far above what the protocols use (40-250
solver steps, 50k samples, batches of a few hundred), so no real experiment meets it.
"""

from __future__ import annotations

import argparse

from sgbench.errors import UserError

MAX_STEPS = 10_000  # solver steps (the paper: 40; EDM-style samplers: a few hundred)
MAX_SAMPLES = 10_000_000  # samples per trial and seed (ADM protocol: 50k)
MAX_BATCH = 65_536  # images per batch (sampler, extractor)
MAX_SEEDS = 1_000
MAX_TRIALS = 1_000_000  # search budget / grid points
MAX_THREADS = 4_096
MAX_WORKERS = 256  # local worker processes of one `sgbench run`
MAX_IMAGE_SIDE = 8_192  # pixels (or latent cells) per side
MAX_CLASSES = 1_000_000
MAX_TRAIN_STEPS = 1_000_000_000
MAX_NAME_BYTES = 200  # run and method names (file names are limited to 255 bytes)


def check_count(value: int, path: str, low: int, high: int) -> None:
    """`low <= value <= high`, else a UserError naming `path`."""
    if value < low:
        raise UserError(f"{path}: must be >= {low}, got {value}")
    if value > high:
        raise UserError(f"{path}: must be <= {high}, got {value} (sgbench's bound for this size)")


def count_arg(low: int, high: int):
    """argparse `type=` for an integer option in [low, high] (argparse turns the error into exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}" if value < low else
                                             f"must be <= {high}, got {value} (sgbench's bound for this size)")
        return value

    parse.__name__ = "integer"
    return parse
