"""Samplers of the flow-matching ODE under guidance rules, reproducible generation, decoders.

    sample(denoisers, rule, noise, cond, steps=40, solver="euler", generators=None) -> x_1
    generate(denoisers, rule, decoder, num_samples, seed, batch_size, ..., conditions="random")
        -> iterator of (indices int64 [B], images uint8 [B, H, W, C], labels int64 [B])
    ClassLabels(mode), Prompts(prompts, encoder, images_per_prompt): condition sources
    evaluation_schedule(rule, steps, solver) -> per model evaluation [(network, cond, gamma)]

Decoders live in sampling.decode (PixelDecoder, VAEDecoder; diffusers is imported lazily).
"""

from sgbench.sampling.conditions import ClassLabels, Prompts
from sgbench.sampling.decode import PixelDecoder, VAEDecoder, to_uint8
from sgbench.sampling.generate import generate
from sgbench.sampling.precision import PRECISIONS, autocast_dtype
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
    "ClassLabels",
    "GuidedVelocity",
    "LABEL_MODES",
    "PRECISIONS",
    "PixelDecoder",
    "Prompts",
    "SOLVERS",
    "VAEDecoder",
    "autocast_dtype",
    "check_rule",
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
