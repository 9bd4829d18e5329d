"""Euler and Heun solvers of the flow-matching ODE dx/dt = v(x, t), t = 0 (noise) -> 1 (data).

The guided velocity at each evaluation comes from the rule: `rule.branches_at(step, n, t)`
lists the branches; branches that share network and gamma run as ONE forward call (batched
along the batch axis: e.g. CFG's conditional and null branches); branches at different gammas
are separate calls (they keep different numbers of tokens).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import torch

from sgbench.errors import UserError
from sgbench.guidance.rules import GuidanceRule
from sgbench.models.denoiser import Denoiser

SOLVERS = ("euler", "heun")


@dataclass(frozen=True)
class Call:
    """One forward pass: `network` at `gamma` on the branches `branches` (indices into the list)."""

    network: str
    gamma: float
    branches: tuple[int, ...]


def plan_calls(branches: Sequence[tuple[str, str, float]]) -> list[Call]:
    """Group branches by (network, gamma), in order of first appearance."""
    groups: dict[tuple[str, float], list[int]] = {}
    for i, (network, _cond, gamma) in enumerate(branches):
        groups.setdefault((network, float(gamma)), []).append(i)
    return [Call(net, gamma, tuple(ids)) for (net, gamma), ids in groups.items()]


def time_grid(steps: int) -> list[float]:
    """Uniform grid t_k = k / steps, k = 0..steps (SiT / the paper's Euler sampler)."""
    return [k / steps for k in range(steps + 1)]


def evaluation_schedule(rule: GuidanceRule, steps: int, solver: str = "euler") -> list[list[tuple[str, str, float]]]:
    """Per model evaluation, the branches it runs [(network, cond_kind, gamma)].

    Euler: one evaluation per step; Heun: two (at t_k and t_{k+1}, with step k's gammas).
    The FLOP accounting sums over this list; the sampler follows exactly the same list.
    """
    return [rule.branches_at(k, steps, t) for k, t in evaluation_times(steps, solver)]


def evaluation_times(steps: int, solver: str = "euler") -> list[tuple[int, float]]:
    """(step, t) of every model evaluation, in order."""
    check_solver(solver)
    grid = time_grid(steps)
    out = []
    for k in range(steps):
        out.append((k, grid[k]))
        if solver == "heun":
            out.append((k, grid[k + 1]))
    return out


def check_rule(rule: GuidanceRule, steps: int, solver: str = "euler") -> None:
    """The rule's per-step checks at exactly the evaluations this solver makes."""
    if int(steps) < 1:
        raise UserError(f"steps must be >= 1, got {steps}")
    rule.check_steps(steps, evaluation_times(steps, solver))


def check_solver(solver: str) -> None:
    if solver not in SOLVERS:
        raise UserError(f"unknown solver {solver!r}; known: {', '.join(SOLVERS)}")


def _as_denoisers(denoisers: Union[Denoiser, Mapping[str, Denoiser]], rule: GuidanceRule) -> Mapping[str, Denoiser]:
    if not isinstance(denoisers, Mapping):
        denoisers = {"main": denoisers}
    missing = [n for n in rule.networks if n not in denoisers]
    if missing:
        raise UserError(f"guidance {rule.method} needs the {' and '.join(missing)} network (for ag: a weak checkpoint)")
    return denoisers


class GuidedVelocity:
    """v(x, t) of a rule over denoisers, for a fixed batch of conditions and generators."""

    def __init__(self, denoisers, rule: GuidanceRule, cond: torch.Tensor, generators=None, autocast=None):
        self.denoisers = _as_denoisers(denoisers, rule)
        self.rule = rule
        self.generators = list(generators) if generators is not None else None
        self.autocast = autocast
        self.conds = {}
        # The class draws happen here, once per trajectory, before any token selection.
        for branch in (rule.strong, rule.weak):
            if branch is None:
                continue
            net = self.denoisers[branch.network]
            if branch.cond == "c":
                c = cond
            elif branch.cond == "null":
                c = net.null_condition(cond)
            else:
                c = self.denoisers["main"].random_condition(cond, self.generators)
            self.conds[branch.cond] = c

    def __call__(self, x: torch.Tensor, t: float, step: int, n_steps: int) -> torch.Tensor:
        branches = self.rule.branches_at(step, n_steps, t)
        preds: list[Optional[torch.Tensor]] = [None] * len(branches)
        b = x.shape[0]
        for call in plan_calls(branches):
            k = len(call.branches)
            xin = x if k == 1 else torch.cat([x] * k)
            conds = [self.conds[branches[i][1]] for i in call.branches]
            cin = conds[0] if k == 1 else torch.cat(conds)
            gens = None
            if call.gamma > 0 and self.generators is not None:
                gens = self.generators * k  # sample i's copies all draw from sample i's generator
            ctx = (
                torch.autocast(device_type=x.device.type, dtype=self.autocast)
                if self.autocast is not None
                else contextlib.nullcontext()
            )
            with ctx:
                out = self.denoisers[call.network](xin, t, cin, gamma=call.gamma, generator=gens)
            out = out.to(x.dtype)
            for j, i in enumerate(call.branches):
                preds[i] = out[j * b : (j + 1) * b] if k > 1 else out
        return self.rule.combine(preds[0], preds[1] if len(preds) > 1 else None)


@torch.inference_mode()
def sample(
    denoisers: Union[Denoiser, Mapping[str, Denoiser]],
    rule: GuidanceRule,
    noise: torch.Tensor,
    cond: torch.Tensor,
    steps: int = 40,
    solver: str = "euler",
    generators: Optional[Sequence[torch.Generator]] = None,
    autocast: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Integrate from x_0 = noise at t = 0 to t = 1; returns x_1 (float32, model space).

    denoisers: {"main": Denoiser} (+ "weak" for ag / ag+sg) or a single Denoiser.
    generators: one per sample (sample i's token selection and ICG class); None = global RNG.
    autocast: e.g. torch.bfloat16 to run the networks under autocast (the ODE state stays fp32).
    """
    check_rule(rule, steps, solver)
    if generators is not None and len(generators) != noise.shape[0]:
        raise ValueError(f"expected {noise.shape[0]} generators, got {len(generators)}")
    velocity = GuidedVelocity(denoisers, rule, cond, generators, autocast)
    grid = time_grid(steps)
    x = noise.float()
    for k in range(steps):
        t0, t1 = grid[k], grid[k + 1]
        v0 = velocity(x, t0, k, steps)
        if solver == "euler":
            x = x + (t1 - t0) * v0
        else:
            v1 = velocity(x + (t1 - t0) * v0, t1, k, steps)
            x = x + (t1 - t0) * 0.5 * (v0 + v1)
    return x
