"""One guidance setting a trial evaluates, and its trials.csv identity columns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional, Union

from sgbench.config.schema import SPARSE_METHODS, MethodConfig

Gamma = Union[float, str]


@dataclass(frozen=True)
class Setting:
    method: str
    omega: float = 1.0
    gamma_strong: Gamma = 0.0
    gamma_weak: Optional[Gamma] = None  # only for sg, cfg+sg, ag+sg
    interval: Optional[tuple[float, float]] = None
    schedule: str = ""  # report label ('cosine'), not the schedule itself
    label: str = ""  # baseline name, e.g. 'cfg' or 'SG_FLOPS'

    @classmethod
    def from_method(cls, m: MethodConfig) -> "Setting":
        weak = m.gamma_weak if m.method in SPARSE_METHODS else None
        interval = tuple(m.interval) if m.interval else None
        return cls(m.method, m.omega, m.gamma_strong, weak, interval, m.schedule, m.name)

    @classmethod
    def from_dict(cls, d: dict) -> "Setting":
        d = dict(d)
        if d.get("interval") is not None:
            d["interval"] = tuple(d["interval"])
        return cls(**d)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["interval"] = list(self.interval) if self.interval else None
        return d

    def columns(self) -> dict:
        """The identity columns of a trials.csv row."""
        return {
            "method": self.method,
            "gamma_strong": self.gamma_strong,
            "gamma_weak": self.gamma_weak,  # empty for methods without a sparse weak branch
            "omega": self.omega,
            "schedule": self.schedule,
            "label": self.label,
            "interval": list(self.interval) if self.interval else None,
        }

    def describe(self) -> str:
        parts = [self.label or self.method]
        if self.method in SPARSE_METHODS:
            parts.append(f"γ=({_g(self.gamma_strong)}, {_g(self.gamma_weak)})")
        elif self.gamma_strong not in (0, 0.0):
            parts.append(f"γ={_g(self.gamma_strong)}")
        if self.method != "none":
            parts.append(f"ω={self.omega:g}")
        return " ".join(parts)


def _g(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)
