"""GFLOPs of a guided sampler: guidance rule -> the sampler's evaluations -> each family's FLOP model
-> `sgbench.metrics.flops.average_flops`. The one composition `sgbench run` (Stages) and
`sgbench flops` share, so both map a method to its branches exactly as the sampler does
(intervals, the omega = 1 skip, schedules, Heun's second evaluation, the weak network of ag).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

from sgbench.metrics.flops import FlopsReport, average_flops


def guided_flops(configs: Mapping[str, Any], rule, steps: int, solver: str = "euler", arch: str = "",
                 **inputs) -> FlopsReport:
    """FLOPs per image of one guided velocity evaluation, averaged over the sampler's evaluations.

    configs: backbone config per network the rule uses ("main", and "weak" for ag / ag+sg);
    inputs: what the families' counts need besides gamma (T2I: text_len).
    """
    from sgbench.models.flop_count import forward_flops
    from sgbench.sampling.solvers import check_rule, evaluation_schedule

    check_rule(rule, steps, solver)
    cache: dict[tuple[str, float], tuple[int, int]] = {}

    def cost(network: str, gamma: float) -> tuple[int, int]:
        key = (network, float(gamma))
        if key not in cache:
            cache[key] = tuple(forward_flops(configs[network], gamma, **inputs))
        return cache[key]

    evaluations = [[cost(net, g) for net, _cond, g in branches]
                   for branches in evaluation_schedule(rule, steps, solver)]
    routes = [str(r) for r in getattr(configs["main"], "routes", ())]
    return average_flops(evaluations, cost("main", 0.0), steps=steps, solver=solver, guidance=rule.method,
                         arch=arch, routes=routes, text_len=inputs.get("text_len"))


def gflops_per_image(arch, routes: Optional[Sequence] = None, guidance=None, steps: int = 40, solver: str = "euler",
                     text_len: Optional[int] = None, **config_overrides) -> FlopsReport:
    """GFLOPs per image of sampling `arch` (a preset name of any family, or a config) under
    `guidance` (a GuidanceConfig; default unguided). The weak network of ag / ag+sg is taken to be
    an earlier checkpoint of the same architecture. `text_len`: text tokens of a T2I architecture."""
    from sgbench.guidance import GuidanceConfig, build_rule
    from sgbench.models.registry import config_for

    config = config_for(arch, routes, **config_overrides)
    rule = build_rule(guidance if guidance is not None else GuidanceConfig())
    return guided_flops({"main": config, "weak": config}, rule, steps, solver,
                        arch=arch if isinstance(arch, str) else "", text_len=text_len)
