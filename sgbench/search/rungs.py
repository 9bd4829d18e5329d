"""Rung-synchronous successive halving: which points of a fidelity go on to the next one.

Pure functions of a rung's complete results, so the decision is the same however the run was
interrupted, resumed or split across workers (Optuna's pruners decide as results arrive, so their
decisions depend on the order in which trials finish).
"""

from __future__ import annotations

import math


def keep_count(n: int, fraction: float) -> int:
    """Points of a rung of `n` that go on: the best ceil(fraction * n), at least one."""
    if n <= 0:
        return 0
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


def promoted(results: list[tuple[int, float]], fraction: float, minimize: bool) -> list[int]:
    """The point indices of the best `keep_count(len(results), fraction)` results.

    results: (point index, objective value) for every point of the rung. Ties are broken by the
    point index (the grid's order), and non-finite values rank last, so the choice is unique.
    """
    def key(item):
        index, value = item
        finite = value is not None and math.isfinite(value)
        return (0 if finite else 1, (value if minimize else -value) if finite else 0.0, index)

    ranked = sorted(results, key=key)
    return sorted(index for index, _ in ranked[: keep_count(len(results), fraction)])


def rung_sizes(n_points: int, n_rungs: int, fraction: float) -> list[int]:
    """How many points each rung evaluates: n, then the kept share of the previous rung."""
    sizes = [n_points]
    for _ in range(n_rungs - 1):
        sizes.append(keep_count(sizes[-1], fraction))
    return sizes
