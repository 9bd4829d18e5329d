"""The guidance vocabulary: every method, its branches, and the one validated config of a setting.

Torch-free, so the suite schema, every CLI command, the FLOP accounting and the report read
the same facts. The torch side (`sgbench.guidance.rules`) turns a `GuidanceConfig` into a
`GuidanceRule` that samplers evaluate; nothing else spells a method name.

Every guided method of the paper has the same shape: a *strong* branch D(x, t, c; gamma_strong)
on the main network and a *weak* branch that differs in network, condition or sparsity; the
guided velocity is `omega * strong + (1 - omega) * weak` (paper eqs. 3, 7, 8). `METHODS` says,
per method, what the weak branch is.

    GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9)   # validated once, frozen
    GuidanceConfig("cfg", 1.5, name="cfg")   # a suite's `methods:` entry is a labelled config
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Optional, Union

from sgbench.errors import FieldError, UserError
from sgbench.guidance.schedules import Schedule, parse_schedule

NETWORKS = ("main", "weak")  # "weak": a second, earlier checkpoint (autoguidance)
CONDITIONS = ("c", "null", "random")  # the sample's class, the null class, an independent class
OMEGA_MAX = 20.0  # guidance scales above this are typos, not experiments (suites and CLI alike)

Gamma = Union[float, str]  # a rate in [0, 1) or a schedule 'cosine:START:END'


@dataclass(frozen=True)
class MethodSpec:
    """One guidance method: its weak branch in terms of a config's fields, and how to show it."""

    name: str
    display: str  # report name (paper spelling)
    weak_network: Optional[str]  # None: unguided (strong branch only); "main" or "weak"
    weak_cond: Optional[str]  # condition of the weak branch: "c", "null" or "random"
    uses_gamma_weak: bool  # weak branch at gamma_weak (else both branches at gamma_strong)
    requires_gap: bool  # gamma_strong < gamma_weak at every guided step (see METHODS)
    summary: str
    color: str  # report colour (figures)
    marker: str  # baseline marker of the Pareto plot
    combine: str = "linear"  # name of the combine function in sgbench.guidance.rules

    @property
    def guided(self) -> bool:
        return self.weak_network is not None

    @property
    def needs_weak_network(self) -> bool:
        return self.weak_network == "weak"


# requires_gap: the capacity gap must come from sparsity alone (same network), so
# gamma_strong < gamma_weak is enforced at every guided step (paper eq. 6). For ag+sg the gap
# comes mainly from the earlier checkpoint and the paper's SG_FID schedules cross mid-way.
METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec("none", "Unguided", None, None, False, False,
                   "D(c; gamma_strong), unguided (gamma may be > 0)", "#4d4d4d", "s"),
        MethodSpec("cfg", "CFG", "main", "null", False, False,
                   "w D(c) + (1-w) D(null), both at gamma_strong", "#d62728", "D"),
        MethodSpec("sg", "SG", "main", "c", True, True,
                   "w D(c; g_s) + (1-w) D(c; g_w)", "#1f77b4", "P"),
        MethodSpec("cfg+sg", "CFG+SG", "main", "null", True, True,
                   "w D(c; g_s) + (1-w) D(null; g_w)", "#9467bd", "P"),
        MethodSpec("ag", "AG", "weak", "c", False, False,
                   "w D(c) + (1-w) D_weak(c), both at gamma_strong", "#ff7f0e", "^"),
        MethodSpec("ag+sg", "AG+SG", "weak", "c", True, False,
                   "w D(c; g_s) + (1-w) D_weak(c; g_w)", "#2ca02c", "P"),
        MethodSpec("icg", "ICG", "main", "random", False, False,
                   "w D(c) + (1-w) D(c_rand), c_rand ~ U(classes)", "#8c564b", "v"),
    )
}
# Methods with two sparsity rates: the (gamma_strong, gamma_weak) plane a search covers.
SEARCHABLE = tuple(n for n, m in METHODS.items() if m.uses_gamma_weak)
DEFAULT_SEARCH = "sg"  # a suite's search.method when it names none


def method_spec(name) -> MethodSpec:
    """The registry entry of `name`; a FieldError('method', ...) listing the known ones otherwise."""
    if not isinstance(name, str) or name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FieldError("method", f"unknown guidance method {name!r}; known: {', '.join(METHODS)}{hint}")
    return METHODS[name]


def method_display_name(method: str) -> str:
    """'CFG+SG' for 'cfg+sg'; an unknown name (e.g. from an old trials.csv) as it is."""
    spec = METHODS.get(method)
    return spec.display if spec else method


def is_unguided(method: str) -> bool:
    spec = METHODS.get(method)
    return spec is not None and not spec.guided


def method_order(method: str) -> int:
    """Position in METHODS (report row order); unknown names last."""
    return list(METHODS).index(method) if method in METHODS else len(METHODS)


# ---- values -------------------------------------------------------------------------------------

def check_omega(value, key: str = "omega") -> float:
    """A guidance scale: a finite number in [0, OMEGA_MAX] (1 = the strong branch alone)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(key, f"expected a number (the guidance scale), got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise FieldError(key, f"must be >= 0 (a guidance scale), got {value:g}")
    if value > OMEGA_MAX:
        raise FieldError(key, f"must be <= {OMEGA_MAX:g} (guidance scales above are typos, not experiments), "
                              f"got {value:g}")
    return float(value)


def parse_gamma(value, key: str = "gamma") -> Gamma:
    """A sparsity rate or schedule, normalised: constants become floats ('0.5', 'constant:0.5',
    'linear:0.5:0.5' -> 0.5), schedules stay strings. FieldError(key, ...) when invalid."""
    sched = parse_schedule(value, key)
    if sched.is_constant:
        return sched.start
    return value.strip() if isinstance(value, str) else str(sched)


def parse_interval(spec, key: str = "interval") -> Optional[tuple[float, float]]:
    """None, (lo, hi), [lo, hi] or 'lo,hi' -> (lo, hi) with 0 <= lo < hi <= 1 (t=0 noise, t=1 data)."""
    if spec is None:
        return None
    try:
        parts = spec.replace(":", ",").split(",") if isinstance(spec, str) else list(spec)
        if any(isinstance(p, bool) for p in parts):
            raise TypeError
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise FieldError(key, f"expected two times T_LO,T_HI in [0, 1] (t=0 noise, t=1 data), got {spec!r}") from None
    if not (0.0 <= lo < hi <= 1.0):
        raise FieldError(key, f"must satisfy 0 <= t_lo < t_hi <= 1 (t=0 noise, t=1 data), got ({lo:g}, {hi:g})")
    return (lo, hi)


# ---- one setting --------------------------------------------------------------------------------

@dataclass(frozen=True)
class GuidanceConfig:
    """One guidance setting, validated once here and frozen; every later form is derived from it.

    method: a key of METHODS.
    omega: guidance scale in [0, OMEGA_MAX] (1 = no guidance effect: the weak branch is skipped).
    gamma_strong: rate of the strong branch (for none/cfg/ag/icg: of both branches).
    gamma_weak: rate of the weak branch; required by sg, cfg+sg, ag+sg and rejected otherwise.
    Each gamma is a float or a schedule 'linear:START:END' / 'cosine:START:END' (constants become floats).
    interval: (t_lo, t_hi): guide only there, the strong branch alone elsewhere.
    schedule: report label ('cosine'); derived from the gammas when empty.
    name: the setting's label (a suite's method name, trials.csv `label`); '' for search points.
    """

    method: str = "none"
    omega: float = 1.0
    gamma_strong: Gamma = 0.0
    gamma_weak: Optional[Gamma] = None
    interval: Optional[tuple[float, float]] = None
    schedule: str = ""
    name: str = ""

    def __post_init__(self):
        spec = method_spec(self.method)
        set_ = object.__setattr__
        set_(self, "omega", check_omega(self.omega))
        set_(self, "gamma_strong", parse_gamma(self.gamma_strong, "gamma_strong"))
        if spec.uses_gamma_weak:
            if self.gamma_weak is None:
                raise FieldError("gamma_weak", f"required for {self.method} (the weak branch's sparsity rate, "
                                               "e.g. 0.9)")
            set_(self, "gamma_weak", parse_gamma(self.gamma_weak, "gamma_weak"))
            strong, weak = self.strong_schedule, self.weak_schedule
            if spec.requires_gap and strong.is_constant and weak.is_constant and not strong.start < weak.start:
                raise UserError(f"{self.method} needs gamma_strong < gamma_weak (the weak branch is the sparser "
                                f"one), got {strong.start:g} >= {weak.start:g}")
        elif self.gamma_weak is not None:
            what = "has one branch" if not spec.guided else "runs both branches"
            raise FieldError("gamma_weak", f"applies only to {', '.join(SEARCHABLE)}; {self.method} {what} "
                                           "at gamma_strong")
        set_(self, "interval", parse_interval(self.interval))
        if self.interval is not None and not spec.guided:
            raise FieldError("interval", f"needs a guided method ({self.method} has no weak branch)")
        if not isinstance(self.schedule, str) or not isinstance(self.name, str):
            raise UserError("schedule and name must be strings")
        if not self.schedule:
            kinds = sorted({s.kind for s in (self.strong_schedule, self.weak_schedule) if not s.is_constant})
            set_(self, "schedule", "+".join(kinds))

    # ---- what the method says ------------------------------------------------------------------
    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    @property
    def strong_schedule(self) -> Schedule:
        return parse_schedule(self.gamma_strong, "gamma_strong")

    @property
    def weak_schedule(self) -> Schedule:
        """The weak branch's rate (gamma_strong where the method has no gamma_weak)."""
        g = self.gamma_weak if self.spec.uses_gamma_weak else self.gamma_strong
        return parse_schedule(g, "gamma_weak")

    @property
    def needs_weak_network(self) -> bool:
        return self.spec.needs_weak_network

    @property
    def needs_random_condition(self) -> bool:
        return self.spec.weak_cond == "random"

    @property
    def label(self) -> str:
        return self.name

    def replace(self, **changes) -> "GuidanceConfig":
        """A copy with some fields changed, validated again (the schedule label is derived again
        when the gammas or the method change and no label is given)."""
        if {"method", "gamma_strong", "gamma_weak"} & set(changes):
            changes.setdefault("schedule", "")
        return replace(self, **changes)

    # ---- its other forms -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-able (Optuna user attribute `setting`); `from_dict` reads it back."""
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval else None
        d["label"] = d.pop("name")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GuidanceConfig":
        d = dict(d)
        if "label" in d:
            d["name"] = d.pop("label")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def columns(self) -> dict:
        """The identity columns of a trials.csv row."""
        return {
            "method": self.method,
            "gamma_strong": self.gamma_strong,
            "gamma_weak": self.gamma_weak,  # empty for methods without a sparse weak branch
            "omega": self.omega,
            "schedule": self.schedule,
            "label": self.name,
            "interval": list(self.interval) if self.interval else None,
        }

    def describe(self) -> str:
        """One line for logs: 'SG_FLOPS γ=(0.5, 0.9) ω=2.5'."""
        parts = [self.name or self.method]
        if self.spec.uses_gamma_weak:
            parts.append(f"γ=({_g(self.gamma_strong)}, {_g(self.gamma_weak)})")
        elif self.gamma_strong != 0.0:
            parts.append(f"γ={_g(self.gamma_strong)}")
        if self.spec.guided:
            parts.append(f"ω={self.omega:g}")
        return " ".join(parts)


def _g(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


# Named settings from the paper (appendix B.1; omega 2.5 as in its figures A7-A9).
# SG_FLOPS: one checkpoint, both branches conditional, gamma (0.5, 0.9).
# SG_FID: the weak branch is an early checkpoint of the same run (50k iterations in the paper),
#   its rate decays 0.6 -> 0.0 by cosine while the main network's rises 0.0 -> 0.6.
PRESETS: dict[str, GuidanceConfig] = {
    "sg_flops": GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9, name="SG_FLOPS"),
    "sg_fid": GuidanceConfig("ag+sg", omega=2.5, gamma_strong="cosine:0.0:0.6", gamma_weak="cosine:0.6:0.0",
                             name="SG_FID"),
}


def preset(name: str, **overrides) -> GuidanceConfig:
    """A named setting with some fields replaced (None = keep the preset's)."""
    if name not in PRESETS:
        raise FieldError("preset", f"unknown guidance preset {name!r}; known: {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    if "method" in changes and "gamma_weak" not in changes and not method_spec(changes["method"]).uses_gamma_weak:
        changes["gamma_weak"] = None  # a one-rate method drops the preset's gamma_weak
    return PRESETS[name].replace(**changes)
