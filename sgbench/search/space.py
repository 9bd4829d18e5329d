"""The search space over (gamma_strong, gamma_weak, omega), always with gamma_strong < gamma_weak.

Grid points are enumerated here (paper heatmaps: a (gamma_strong, gamma_weak) triangle per omega);
the other samplers draw through `suggest`, which keeps the constraint by construction: the pair is
one categorical over valid pairs when both come from lists, and gamma_weak's range starts above
gamma_strong when they are ranges.
"""

from __future__ import annotations

import itertools

from sgbench.config.schema import RangeConfig, SpaceConfig

PARAMS = ("gamma_strong", "gamma_weak", "omega")


def values(v) -> list[float]:
    return v.values() if isinstance(v, RangeConfig) else [float(x) for x in v]


def grid_points(space: SpaceConfig) -> list[dict[str, float]]:
    """Every (gamma_strong < gamma_weak, omega) point, ordered by omega, then gamma_strong, gamma_weak."""
    gs, gw, om = (values(getattr(space, p)) for p in PARAMS)
    return [
        {"gamma_strong": s, "gamma_weak": w, "omega": o}
        for o, s, w in itertools.product(om, gs, gw)
        if s < w
    ]


def _pair_key(s: float, w: float) -> str:
    return f"{s:g}:{w:g}"


def suggest(trial, space: SpaceConfig) -> dict[str, float]:
    """Draw one point through an Optuna trial (define-by-run); returns the three values."""
    gs_v, gw_v = space.gamma_strong, space.gamma_weak
    if not isinstance(gs_v, RangeConfig) and not isinstance(gw_v, RangeConfig):
        pairs = {_pair_key(s, w): (s, w) for s in values(gs_v) for w in values(gw_v) if s < w}
        s, w = pairs[trial.suggest_categorical("gammas", list(pairs))]
    else:
        s = _suggest_one(trial, "gamma_strong", gs_v, below=space.bounds("gamma_weak")[1])
        w = _suggest_one(trial, "gamma_weak", gw_v, lower_than=s)
    return {"gamma_strong": s, "gamma_weak": w, "omega": _suggest_one(trial, "omega", space.omega)}


def _suggest_one(trial, name: str, v, below: float | None = None, lower_than: float | None = None) -> float:
    """One value of `v` strictly between `lower_than` and `below` (either may be None)."""
    eps = 1e-9  # lattice values are rounded to 10 digits

    def fits(x: float) -> bool:
        return (below is None or x < below - eps) and (lower_than is None or x > lower_than + eps)

    if not isinstance(v, RangeConfig):
        return float(trial.suggest_categorical(name, [x for x in values(v) if fits(x)]))
    if v.step:  # lattice values only: the first above gamma_strong to the last below the bound
        lattice = [x for x in v.values() if fits(x)]
        low, high = lattice[0], lattice[-1]
    else:
        low = v.low if lower_than is None else max(v.low, lower_than + 1e-3)
        high = v.high if below is None else min(v.high, below - 1e-3)
    x = float(trial.suggest_float(name, low, max(low, high), step=v.step, log=v.log))
    # Optuna returns low + k * step in floating point (0.30000000000000004); snap to the lattice,
    # or a token count int(N * gamma) could round down
    return round(x, 10) if v.step else x
