"""Guidance rules: the torch side of the vocabulary (`sgbench.guidance.vocabulary`).

`build_rule(config)` turns a validated `GuidanceConfig` into a `GuidanceRule`: the branches a
sampler evaluates at each step (schedules, the guidance interval and omega are data on the
rule; the sampler only asks `branches_at(step, n_steps, t)`) and the combine function of the
method. The FLOP accounting follows the same branches (`sgbench.sampling.solvers.evaluation_schedule`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch

from sgbench.errors import UserError
from sgbench.guidance.schedules import Schedule
from sgbench.guidance.vocabulary import GuidanceConfig


def linear_guidance(strong: torch.Tensor, weak: torch.Tensor, omega: float) -> torch.Tensor:
    """omega * strong + (1 - omega) * weak, written as in the paper (exact for omega = 1)."""
    return omega * strong + (1.0 - omega) * weak


# MethodSpec.combine -> function (every method of the paper combines linearly)
COMBINE: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {"linear": linear_guidance}


@dataclass(frozen=True)
class Branch:
    network: str  # "main" | "weak"
    cond: str  # "c" | "null" | "random"
    gamma: Schedule


@dataclass(frozen=True)
class GuidanceRule:
    """A built, validated rule. Use `build_rule(GuidanceConfig(...))` to make one."""

    method: str
    strong: Branch
    weak: Optional[Branch]
    omega: float
    interval: Optional[tuple[float, float]]
    requires_gap: bool
    combine_fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor] = linear_guidance

    @property
    def networks(self) -> tuple[str, ...]:
        """Networks a sampler must be given ("main", plus "weak" for ag/ag+sg)."""
        return ("main", "weak") if self.weak is not None and self.weak.network == "weak" else ("main",)

    def guides_at(self, t: float) -> bool:
        """Whether the weak branch is evaluated at time t (paper convention, t=1 data).

        Outside the interval, and for omega == 1 (the weak term has weight 0), only the strong
        branch runs: the combination would equal it exactly, so the evaluation is skipped.
        """
        if self.weak is None or self.omega == 1.0:
            return False
        if self.interval is None:
            return True
        lo, hi = self.interval
        return lo <= t <= hi

    def branches_at(self, step: int, n_steps: int, t: Optional[float] = None) -> list[tuple[str, str, float]]:
        """[(network, cond_kind, gamma)] evaluated at `step`; strong first.

        `t` is the evaluation time; by default the Euler time step / n_steps. Heun's corrector
        evaluates at the next grid time with the same step's gammas.
        """
        t = step / n_steps if t is None else t
        out = [(self.strong.network, self.strong.cond, self.strong.gamma.value(step, n_steps))]
        if self.guides_at(t):
            out.append((self.weak.network, self.weak.cond, self.weak.gamma.value(step, n_steps)))
        return out

    def combine(self, strong: torch.Tensor, weak: Optional[torch.Tensor]) -> torch.Tensor:
        return strong if weak is None else self.combine_fn(strong, weak, self.omega)

    def check_steps(self, n_steps: int, evaluations: Optional[Iterable[tuple[int, float]]] = None) -> None:
        """Checks that need the step count (schedules): one-line UserError.

        `evaluations`: the (step, t) pairs a solver evaluates; default Euler's (k, k / n_steps).
        The ordering gamma_strong < gamma_weak is checked only where the weak branch runs.
        """
        if int(n_steps) < 1:
            raise UserError(f"steps must be >= 1, got {n_steps}")
        if not self.requires_gap:
            return
        if evaluations is None:
            evaluations = [(k, k / n_steps) for k in range(n_steps)]
        for k, t in evaluations:
            if not self.guides_at(t):
                continue
            gs, gw = self.strong.gamma.value(k, n_steps), self.weak.gamma.value(k, n_steps)
            if not gs < gw:
                raise UserError(
                    f"{self.method} needs gamma_strong < gamma_weak at every guided step; at step {k} of "
                    f"{n_steps} gamma_strong={gs:.4g} >= gamma_weak={gw:.4g} (change the schedules or the interval)"
                )

    def describe(self) -> str:
        if self.weak is None:
            return f"{self.method}(gamma={self.strong.gamma})"
        iv = "" if self.interval is None else f", interval={self.interval[0]:g}..{self.interval[1]:g}"
        return (
            f"{self.method}(omega={self.omega:g}, gamma_strong={self.strong.gamma}, "
            f"weak={self.weak.network}/{self.weak.cond}@{self.weak.gamma}{iv})"
        )


def build_rule(config: GuidanceConfig) -> GuidanceRule:
    """The GuidanceRule of a validated config (pure; no models involved)."""
    spec = config.spec
    weak = None
    if spec.guided:
        weak = Branch(spec.weak_network, spec.weak_cond, config.weak_schedule)
    return GuidanceRule(
        method=config.method,
        strong=Branch("main", "c", config.strong_schedule),
        weak=weak,
        omega=config.omega,
        interval=config.interval,
        requires_gap=spec.requires_gap,
        combine_fn=COMBINE[spec.combine],
    )
