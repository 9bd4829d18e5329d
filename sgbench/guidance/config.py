"""`GuidanceConfig`: the typed, validated description of one guidance setting, and presets.

Validated once in `__post_init__` (one-line UserError); `build_rule(config)` then trusts it.
Checks that depend on the number of sampling steps (schedules whose order may flip between
steps) run in `GuidanceRule.check_steps(n_steps)`, which the samplers call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

from sgbench.errors import UserError
from sgbench.guidance.rules import RULES, Branch, GuidanceRule
from sgbench.guidance.schedules import Schedule, parse_schedule

GammaSpec = Union[float, str, Schedule]


def parse_interval(spec) -> Optional[tuple[float, float]]:
    """None, (lo, hi), [lo, hi] or 'lo,hi' -> (lo, hi) with 0 <= lo <= hi <= 1."""
    if spec is None:
        return None
    try:
        if isinstance(spec, str):
            parts = [p for p in spec.replace(":", ",").split(",")]
            lo, hi = (float(p) for p in parts)
        else:
            lo, hi = (float(v) for v in spec)
    except (TypeError, ValueError):
        raise UserError(f"guidance interval must be two times 'T_LO,T_HI' in [0, 1], got {spec!r}") from None
    if not (0.0 <= lo <= hi <= 1.0):
        raise UserError(f"guidance interval must satisfy 0 <= t_lo <= t_hi <= 1 (t=0 noise, t=1 data), got ({lo}, {hi})")
    return (lo, hi)


@dataclass(frozen=True)
class GuidanceConfig:
    """method: none | cfg | sg | cfg+sg | ag | ag+sg | icg.

    omega: guidance scale (>= 0; 1 = no guidance effect, so the weak branch is skipped).
    gamma_strong: rate of the strong branch (all methods; for none/cfg/ag/icg both branches).
    gamma_weak: rate of the weak branch; required by sg, cfg+sg, ag+sg and rejected otherwise.
    Each gamma is a float or a schedule string 'linear:START:END' / 'cosine:START:END'.
    interval: (t_lo, t_hi): guide only there, the strong branch alone elsewhere.
    """

    method: str = "none"
    omega: float = 1.0
    gamma_strong: GammaSpec = 0.0
    gamma_weak: Optional[GammaSpec] = None
    interval: Optional[tuple[float, float]] = None

    def __post_init__(self):
        if self.method not in RULES:
            raise UserError(f"unknown guidance method {self.method!r}; known: {', '.join(RULES)}")
        spec = RULES[self.method]
        if isinstance(self.omega, bool) or not isinstance(self.omega, (int, float)) or not math.isfinite(self.omega):
            raise UserError(f"omega must be a finite number, got {self.omega!r}")
        if self.omega < 0:
            raise UserError(f"omega must be >= 0, got {self.omega}")
        object.__setattr__(self, "omega", float(self.omega))
        strong = parse_schedule(self.gamma_strong, "gamma_strong")
        if spec.uses_gamma_weak:
            if self.gamma_weak is None:
                raise UserError(f"method {self.method} needs gamma_weak (e.g. --gamma-weak 0.9)")
            weak = parse_schedule(self.gamma_weak, "gamma_weak")
            if spec.requires_gap and strong.is_constant and weak.is_constant and not strong.start < weak.start:
                raise UserError(
                    f"{self.method} needs gamma_strong < gamma_weak (the weak branch is the sparser one), "
                    f"got {strong.start:g} >= {weak.start:g}"
                )
        elif self.gamma_weak is not None:
            users = ", ".join(n for n, r in RULES.items() if r.uses_gamma_weak)
            raise UserError(f"gamma_weak applies only to {users}; method {self.method} runs at gamma_strong")
        if spec.weak_network is None and self.interval is not None:
            raise UserError("a guidance interval needs a guided method (method none has no weak branch)")
        object.__setattr__(self, "interval", parse_interval(self.interval))

    @property
    def strong_schedule(self) -> Schedule:
        return parse_schedule(self.gamma_strong, "gamma_strong")

    @property
    def weak_schedule(self) -> Schedule:
        """The weak branch's rate (gamma_strong where the method has no gamma_weak)."""
        g = self.gamma_weak if RULES[self.method].uses_gamma_weak else self.gamma_strong
        return parse_schedule(g, "gamma_weak")

    @property
    def needs_weak_network(self) -> bool:
        return RULES[self.method].weak_network == "weak"


def build_rule(config: GuidanceConfig) -> GuidanceRule:
    """The GuidanceRule of a validated config (pure; no models involved)."""
    spec = RULES[config.method]
    strong = Branch("main", "c", config.strong_schedule)
    weak = None
    if spec.weak_network is not None:
        weak = Branch(spec.weak_network, spec.weak_cond, config.weak_schedule)
    return GuidanceRule(
        method=config.method,
        strong=strong,
        weak=weak,
        omega=config.omega,
        interval=config.interval,
        requires_gap=spec.requires_gap,
        combine_fn=spec.combine,
    )


# Named settings from the paper (appendix B.1; omega 2.5 as in its figures A7-A9).
# SG_FLOPS: one checkpoint, both branches conditional, gamma (0.5, 0.9).
# SG_FID: the weak branch is an early checkpoint of the same run (50k iterations in the paper),
#   its rate decays 0.6 -> 0.0 by cosine while the main network's rises 0.0 -> 0.6.
PRESETS: dict[str, GuidanceConfig] = {
    "sg_flops": GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9),
    "sg_fid": GuidanceConfig("ag+sg", omega=2.5, gamma_strong="cosine:0.0:0.6", gamma_weak="cosine:0.6:0.0"),
}


def preset(name: str, **overrides) -> GuidanceConfig:
    if name not in PRESETS:
        raise UserError(f"unknown guidance preset {name!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[name]
    fields = dict(method=base.method, omega=base.omega, gamma_strong=base.gamma_strong,
                  gamma_weak=base.gamma_weak, interval=base.interval)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return GuidanceConfig(**fields)
