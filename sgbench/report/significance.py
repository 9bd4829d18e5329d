"""The noise of a setting's value and whether two values differ beyond it. Pure functions,
shared by the report's tables and `sgbench check`.

A setting's value is the mean over its seeds. Its standard error combines the two estimates a
run records (`seed_mean_se`):
- across seeds: std(values, ddof=1) / sqrt(n), for n >= 2 seeds;
- within seeds: each seed's bootstrap error `<metric>_se` (sgbench.metrics.bootstrap),
  sqrt(sum se_i^2) / n;
the larger of the two (two or three seeds alone estimate their spread poorly, and the bootstrap
alone misses what varies with the seed beyond the samples); NaN when neither exists.

A difference between two values (`difference`) is
- paired when both have the same n >= 2 seeds: seed s draws the same noise, labels and token
  selections in both, so the per-seed differences d_s cancel what they share:
  se = std(d, ddof=1) / sqrt(n);
- unpaired otherwise: se = sqrt(se_a^2 + se_b^2). With one shared seed the two errors are
  positively correlated, so this overstates the noise of the difference (a conservative test).
It is significant when |delta| > k * se (k = 2: about 95 %, two-sided).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import numpy as np


def _is_num(x) -> bool:
    return x is not None and not math.isnan(float(x))


def seed_mean_se(values: Sequence[float], ses: Optional[Sequence[float]] = None) -> tuple[float, float, int, float]:
    """(mean, std over seeds (nan for one), n, standard error of the mean) of per-seed values;
    `ses[i]` is the bootstrap standard error of `values[i]` (nan: none)."""
    ses = list(ses) if ses is not None else [math.nan] * len(values)
    pairs = [(float(v), s) for v, s in zip(values, ses) if _is_num(v)]
    n = len(pairs)
    if n == 0:
        return math.nan, math.nan, 0, math.nan
    v = np.array([x for x, _ in pairs])
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    candidates = [std / math.sqrt(n)] if n > 1 else []
    boot = [float(s) for _, s in pairs if _is_num(s)]
    if len(boot) == n:  # every seed has its bootstrap error
        candidates.append(math.sqrt(sum(s * s for s in boot)) / n)
    return float(v.mean()), std, n, max(candidates) if candidates else math.nan


@dataclass(frozen=True)
class Difference:
    delta: float  # a - b
    se: float  # standard error of delta; nan when unknown
    paired: int  # seeds paired (0: unpaired)

    def significant(self, k: float = 2.0) -> Optional[bool]:
        """|delta| > k se; None when the noise is unknown."""
        if math.isnan(self.se):
            return None
        return abs(self.delta) > k * self.se


def difference(a: Mapping, b: Mapping, se_a: float = math.nan, se_b: float = math.nan) -> Difference:
    """a - b for per-seed values {seed: value} of two settings (or runs), with their standard
    errors of the mean (`seed_mean_se`) for the unpaired case."""
    a = {s: float(v) for s, v in a.items() if _is_num(v)}
    b = {s: float(v) for s, v in b.items() if _is_num(v)}
    if not a or not b:
        return Difference(math.nan, math.nan, 0)
    delta = float(np.mean(list(a.values())) - np.mean(list(b.values())))
    if len(a) >= 2 and set(a) == set(b):
        d = np.array([a[s] - b[s] for s in a])
        return Difference(delta, float(d.std(ddof=1) / math.sqrt(len(d))), len(d))
    known = [x for x in (se_a, se_b) if not math.isnan(x)]
    return Difference(delta, math.sqrt(sum(x * x for x in known)) if known else math.nan, 0)
