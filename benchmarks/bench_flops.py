"""FLOPs accounting speed: composed fast path vs a naive full fvcore trace, SiT-XL/2 with route 2-24.

    .venv/bin/python benchmarks/bench_flops.py [--skip-naive]

Prints (all measured in this run): the fast path's cold start (component traces), one 40-step
cosine schedule, the whole (gamma_strong, gamma_weak) grid of the paper's sweeps for sg and
cfg+sg, and one naive full trace of the routed SiT-XL/2 (which also checks the fast path's
number at that gamma). A naive schedule would need one full trace per distinct token count.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from sgbench.guidance import GuidanceConfig, build_rule  # noqa: E402
from sgbench.models.dit import DiT, dit_config  # noqa: E402
from sgbench.models.flop_count import forward_flops, trace_model_flops  # noqa: E402
from sgbench.models.routing import num_kept  # noqa: E402
from sgbench.run.flops import gflops_per_image  # noqa: E402

ARCH, ROUTES, STEPS = "SiT-XL/2", ["2-24"], 40
GRID = [round(0.1 * i, 1) for i in range(10)]  # 0.0 .. 0.9


def sg(method, strong, weak):
    return GuidanceConfig(method, omega=2.5, gamma_strong=strong, gamma_weak=weak)


def step_gammas(cfg):
    rule = build_rule(cfg)
    return [g for k in range(STEPS) for _net, _cond, g in rule.branches_at(k, STEPS)]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-naive", action="store_true", help="skip the full-model trace (~10-30 s, 3 GB)")
    args = parser.parse_args()
    torch.set_num_threads(1)

    _, cold = timed(lambda: gflops_per_image(ARCH, ROUTES))
    cosine = sg("ag+sg", "cosine:0:0.6", "cosine:0.6:0")  # SG_FID (crossing rates: ag+sg)
    sched, t_sched = timed(lambda: gflops_per_image(ARCH, ROUTES, cosine, steps=STEPS))
    pairs = [(s, w) for s, w in itertools.product(GRID, GRID) if s < w]
    schedules = ["cosine:0.6:0", "linear:0.6:0", "cosine:0:0.6"]

    def grid():
        out = [gflops_per_image(ARCH, ROUTES, sg(m, s, w), STEPS) for m in ("sg", "cfg+sg") for s, w in pairs]
        out += [gflops_per_image(ARCH, ROUTES, sg("ag+sg", a, b), STEPS) for a in schedules for b in schedules]
        return out

    results, t_grid = timed(grid)
    n_tokens = dit_config(ARCH).num_tokens
    distinct = len({num_kept(n_tokens, g) for g in step_gammas(cosine)})
    print(f"fast path cold start (3 component traces of {ARCH}): {cold:.2f} s")
    print(f"one {STEPS}-step cosine schedule (ag+sg): {t_sched * 1e3:.2f} ms -> {sched.gflops:.2f} GFLOPs "
          f"({sched.relative_to_unguided:.3f}x unguided), {distinct} distinct token counts")
    print(f"whole grid ({len(results)} settings: {len(pairs)} pairs x sg/cfg+sg + 9 schedule pairs): {t_grid * 1e3:.1f} ms")

    if not args.skip_naive:
        model, t_build = timed(lambda: DiT(dit_config(ARCH, routes=ROUTES)).eval())
        naive, t_trace = timed(lambda: trace_model_flops(model, 0.5).fvcore)
        fast = forward_flops(model.config, 0.5).fvcore
        print(f"naive full trace at gamma=0.5: {t_trace:.2f} s (+{t_build:.1f} s to build the model); "
              f"{naive / 1e9:.4f} GFLOPs, fast path {fast / 1e9:.4f} ({'equal' if naive == fast else 'DIFFERENT'})")
        print(f"naive {STEPS}-step schedule (memoised by token count) ~ {distinct} traces = {distinct * t_trace:.0f} s "
              f"({distinct * t_trace / t_sched:.0f}x the fast path warm, {distinct * t_trace / (t_sched + cold):.0f}x cold)")
        # A memoising naive tracer needs one full trace per distinct token count in the grid.
        gammas = {g for s, w in pairs for g in (s, w)}
        gammas |= {g for a in schedules for b in schedules for g in step_gammas(sg("ag+sg", a, b))}
        n_traces = len({num_kept(model.config.num_tokens, g) for g in gammas})
        print(f"naive whole grid (memoised by token count): {n_traces} traces ~ {n_traces * t_trace:.0f} s "
              f"vs fast {t_grid + cold:.1f} s cold")


if __name__ == "__main__":
    main()
