"""Samplers of the flow-matching ODE under guidance rules, reproducible generation, decoders.

    sample(denoisers, rule, noise, cond, steps=40, solver="euler", generators=None) -> x_1
    generate(denoisers, rule, decoder, num_samples, seed, batch_size, ...) -> iterator of
        (indices int64 [B], images uint8 [B, H, W, C], labels int64 [B])
    evaluation_schedule(rule, steps, solver) -> per model evaluation [(network, cond, gamma)]

Decoders live in sampling.decode (PixelDecoder, VAEDecoder; diffusers is imported lazily).
"""

from sgbench.sampling.decode import PixelDecoder, VAEDecoder, to_uint8
from sgbench.sampling.generate import default_autocast, generate
from sgbench.sampling.seeding import LABEL_MODES, initial_noise, labels_for, make_generators, sample_seed
from sgbench.sampling.solvers import (
    SOLVERS,
    Call,
    GuidedVelocity,
    check_rule,
    evaluation_schedule,
    evaluation_times,
    plan_calls,
    sample,
    time_grid,
)

__all__ = [
    "Call",
    "GuidedVelocity",
    "LABEL_MODES",
    "PixelDecoder",
    "SOLVERS",
    "VAEDecoder",
    "check_rule",
    "default_autocast",
    "evaluation_schedule",
    "evaluation_times",
    "generate",
    "initial_noise",
    "labels_for",
    "make_generators",
    "plan_calls",
    "sample",
    "sample_seed",
    "time_grid",
    "to_uint8",
]
