"""Sampling cost: SG(0.5, 0.9) vs CFG vs unguided wall time next to the FLOP ratio, and the
overhead of the harness (rules, batching, per-sample generators) over a bare Euler loop.

    .venv/bin/python benchmarks/bench_sampling.py                  # DiT-B/2, 256 tokens, CPU
    .venv/bin/python benchmarks/bench_sampling.py --device cuda    # bf16 autocast on GPU

Random weights (cost does not depend on them). FLOPs are analytic by processed tokens:
1 FMA = 1 FLOP, linear layers per token, adaLN per sample, plus the attention matmuls (which
fvcore leaves out; printed separately). Targets: measured speedup >= 90% of the FLOP-ideal
one; harness overhead <= 5%.

Stable on a shared machine: the configurations run interleaved, in a rotated order each repeat,
and every figure is the MEDIAN over repeats of a PAIRED ratio (the two configurations compared
within one repeat, seconds apart, so slow drifts of the machine's load cancel), in process CPU
time (what one torch thread computes, not the time it waited for a core; wall time is printed
beside it). Each target is decided by the quartiles of its paired ratios: "met" when the median
meets it, "undecided" when the quartiles straddle it (run more --repeats), else "not met".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgbench.guidance import GuidanceConfig, build_rule  # noqa: E402
from sgbench.models.denoiser import VelocityDenoiser  # noqa: E402
from sgbench.models.dit import DiT, dit_config  # noqa: E402
from sgbench.models.routing import num_kept  # noqa: E402
from sgbench.sampling import evaluation_schedule, initial_noise, make_generators, sample  # noqa: E402


def forward_flops(cfg, gamma: float, attention: bool = True) -> float:
    """FLOPs (FMAs) of one forward of one sample at sparsity gamma (TREAD routes)."""
    n, d, p = cfg.num_tokens, cfg.hidden_size, cfg.patch_size
    routed = {b for r in cfg.routes for b in range(r.start, r.end + 1)}
    k = num_kept(n, gamma)
    total = n * cfg.in_channels * p * p * d  # patch embedding
    total += 256 * d + d * d + d * 6 * d * cfg.depth + 2 * d * d  # t-embedder MLP, adaLN (per sample)
    for b in range(cfg.depth):
        tokens = k if b in routed else n
        total += tokens * (12 * d * d)  # qkv 3, proj 1, mlp 8 (ratio 4)
        if attention:
            total += 2 * tokens * tokens * d  # q k^T and attn v
    total += n * d * p * p * cfg.out_channels  # final linear
    return float(total)


def rule_flops(rule, cfg, steps: int, attention: bool = True) -> float:
    return sum(forward_flops(cfg, g, attention) for ev in evaluation_schedule(rule, steps) for (_n, _c, g) in ev)


def bare_euler(model, noise, cond, steps, gamma=0.0, generator=None):
    """The reference: a plain loop calling the backbone, no rules, no per-sample generators."""
    x = noise
    for k in range(steps):
        t = torch.full((x.shape[0],), k / steps, device=x.device)
        v = model(x, t, cond, gamma=gamma, generator=generator)[:, : x.shape[1]]
        x = x + (1.0 / steps) * v
    return x


def timed(fn, device) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def median(values) -> float:
    return float(statistics.median(values))


def paired(a, b) -> list[float]:
    """Quartiles [q1, median, q3] of the per-repeat ratios a[r] / b[r]."""
    ratios = [x / y for x, y in zip(a, b)]
    if len(ratios) == 1:
        return ratios * 3
    q1, q2, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return [q1, q2, q3]


def fmt_q(q) -> str:
    return f"{q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]"


def verdict(q, target: float, higher: bool) -> str:
    """met / not met by the median, undecided when the quartiles straddle the target."""
    lo, mid, hi = q
    if lo <= target <= hi and not (lo == hi):
        return f"undecided (quartiles straddle {target:g}: more --repeats)"
    return "met" if (mid >= target if higher else mid <= target) else "not met"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="DiT-B/2")
    ap.add_argument("--routes", default="2-10")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    autocast = torch.bfloat16 if device.type == "cuda" else None

    cfg = dit_config(args.arch, input_size=32, in_channels=4, num_classes=1000, learn_sigma=True,
                     routes=[r for r in args.routes.split(",") if r])
    torch.manual_seed(0)
    model = DiT(cfg).to(device).eval()
    den = VelocityDenoiser(model, cfg.num_classes, (cfg.in_channels, cfg.input_size, cfg.input_size)).eval()
    gens = make_generators(0, range(args.batch), device)
    noise = initial_noise(den.latent_shape, gens)
    cond = torch.arange(args.batch, device=device) % cfg.num_classes

    rules = {
        "unguided": build_rule(GuidanceConfig("none")),
        "cfg(1.5)": build_rule(GuidanceConfig("cfg", omega=1.5)),
        "sg(0.5,0.9)": build_rule(GuidanceConfig("sg", omega=2.5, gamma_strong=0.5, gamma_weak=0.9)),
        "unguided@0.5": build_rule(GuidanceConfig("none", gamma_strong=0.5)),
    }

    def run_rule(rule):
        def f():
            g = make_generators(0, range(args.batch), device)  # as generate() does per batch
            sample(den, rule, noise, cond, steps=args.steps, generators=g, autocast=autocast)
        return f

    def run_bare(gamma):
        def f():
            g = torch.Generator(device).manual_seed(0)
            ctx = torch.autocast(device.type, autocast) if autocast else torch.autocast("cpu", enabled=False)
            with torch.inference_mode(), ctx:
                bare_euler(model, noise, cond, args.steps, gamma, g)
        return f

    jobs = {name: run_rule(r) for name, r in rules.items()}
    jobs["bare"] = run_bare(0.0)
    jobs["bare@0.5"] = run_bare(0.5)
    for f in jobs.values():  # warm-up
        f()
    names = list(jobs)
    times = {name: [] for name in jobs}  # per repeat: (wall s, cpu s)
    for r in range(args.repeats):  # interleaved, rotated: load drift and position hit every config alike
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(timed(jobs[name], device))
    wall = {name: [w for w, _ in ts] for name, ts in times.items()}
    cpu = {name: [c for _, c in ts] for name, ts in times.items()}

    print(f"# {args.arch}, {cfg.num_tokens} tokens, routes {args.routes}, batch {args.batch}, {args.steps} Euler steps, "
          f"device {device}{' bf16' if autocast else ' fp32'}, threads {args.threads}, {args.repeats} interleaved "
          f"repeats; medians of per-repeat paired ratios [quartiles], process CPU time (wall beside)")
    base = rule_flops(rules["unguided"], cfg, args.steps)
    base_fv = rule_flops(rules["unguided"], cfg, args.steps, attention=False)
    print(f"{'config':<14}{'cpu/s':>9}{'wall/s':>9}{'rel cpu':>22}{'rel wall':>10}{'rel FLOPs':>11}{'rel FLOPs(fvcore)':>19}")
    for name, rule in rules.items():
        rc = paired(cpu[name], cpu["unguided"])
        rw = paired(wall[name], wall["unguided"])
        rf = rule_flops(rule, cfg, args.steps) / base
        rfv = rule_flops(rule, cfg, args.steps, attention=False) / base_fv
        print(f"{name:<14}{median(cpu[name]):>9.3f}{median(wall[name]):>9.3f}{fmt_q(rc):>22}{rw[1]:>10.3f}"
              f"{rf:>11.3f}{rfv:>19.3f}")

    print()
    for slow, fast in (("cfg(1.5)", "sg(0.5,0.9)"), ("unguided", "unguided@0.5")):
        ideal = rule_flops(rules[slow], cfg, args.steps) / rule_flops(rules[fast], cfg, args.steps)
        q = [v / ideal for v in paired(cpu[slow], cpu[fast])]  # fraction of the ideal speedup
        qw = paired(wall[slow], wall[fast])[1] / ideal
        print(f"speedup {fast} over {slow}: FLOP-ideal {ideal:.3f}x; cpu {q[1] * ideal:.3f}x = {100 * q[1]:.1f}% of ideal "
              f"[{100 * q[0]:.1f}, {100 * q[2]:.1f}], wall {100 * qw:.1f}%; target >= 90%: {verdict(q, 0.90, higher=True)}")
    for bare, ours in (("bare", "unguided"), ("bare@0.5", "unguided@0.5")):
        q = [v - 1 for v in paired(cpu[ours], cpu[bare])]
        qw = paired(wall[ours], wall[bare])[1] - 1
        print(f"harness overhead {ours} vs {bare} loop: cpu {100 * q[1]:+.1f}% [{100 * q[0]:+.1f}, {100 * q[2]:+.1f}], "
              f"wall {100 * qw:+.1f}%; target <= 5%: {verdict(q, 0.05, higher=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
