"""Sparsity-rate schedules over the sampling steps: constant, linear:START:END, cosine:START:END.

A schedule is data (kind, start, end); `value(step, n_steps)` is a pure function of the step
index. Step 0 takes START and the last step takes END, so the paper's SG_FID weak branch
"cosine decay from 0.6 to 0.0" is `cosine:0.6:0.0` and its inverse `cosine:0.0:0.6`.
Torch-free: the suite schema, every CLI command and the FLOP accounting parse gammas here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sgbench.errors import FieldError

SCHEDULE_KINDS = ("constant", "linear", "cosine")
SCHEDULE_FORMS = "a rate in [0, 1) or a schedule 'linear:START:END' / 'cosine:START:END'"


@dataclass(frozen=True)
class Schedule:
    kind: str
    start: float
    end: float

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        return cls("constant", float(value), float(value))

    @property
    def is_constant(self) -> bool:
        return self.kind == "constant" or self.start == self.end

    def value(self, step: int, n_steps: int) -> float:
        """Rate at sampling step `step` (0-based) of `n_steps`."""
        if self.is_constant:
            return self.start
        frac = step / (n_steps - 1) if n_steps > 1 else 0.0
        if self.kind == "linear":
            return self.start + (self.end - self.start) * frac
        # cosine: start at frac 0, end at frac 1, flat at both ends (half-cosine decay/ramp)
        return self.end + (self.start - self.end) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def values(self, n_steps: int) -> list[float]:
        return [self.value(k, n_steps) for k in range(n_steps)]

    def __str__(self) -> str:
        if self.kind == "constant":
            return f"{self.start:g}"
        return f"{self.kind}:{self.start:g}:{self.end:g}"


def parse_schedule(spec, what: str = "gamma") -> Schedule:
    """A number (constant), 'V', 'constant:V', 'linear:START:END' or 'cosine:START:END' -> Schedule.

    Every value must lie in [0, 1) (a sparsity rate); both schedule kinds are monotone between
    their endpoints, so checking the endpoints checks every step. Errors are `FieldError(what, ...)`.
    """
    if isinstance(spec, Schedule):
        sched = spec
    elif isinstance(spec, bool) or not isinstance(spec, (int, float, str)):
        raise FieldError(what, f"expected {SCHEDULE_FORMS}, got {spec!r}")
    elif isinstance(spec, (int, float)):
        sched = Schedule.constant(float(spec))
    else:
        parts = [p.strip() for p in spec.strip().split(":")]
        try:
            if len(parts) == 1:
                sched = Schedule.constant(float(parts[0]))
            elif parts[0] == "constant" and len(parts) == 2:
                sched = Schedule.constant(float(parts[1]))
            elif parts[0] in SCHEDULE_KINDS[1:] and len(parts) == 3:
                sched = Schedule(parts[0], float(parts[1]), float(parts[2]))
            else:
                raise ValueError
        except ValueError:
            raise FieldError(what, f"expected {SCHEDULE_FORMS}, got {spec!r}") from None
    for v in (sched.start, sched.end):
        if not (math.isfinite(v) and 0.0 <= v < 1.0):
            where = "" if sched.is_constant else f" (in {sched})"
            raise FieldError(what, f"sparsity rate must be in [0, 1), got {v:g}{where}")
    return sched
