"""Sampling cost: SG(0.5, 0.9) vs CFG vs unguided wall time next to the FLOP ratio, and the
overhead of the harness (rules, batching, per-sample generators) over a bare Euler loop.

    .venv/bin/python benchmarks/bench_sampling.py                  # DiT-B/2, 256 tokens, CPU
    .venv/bin/python benchmarks/bench_sampling.py --device cuda    # bf16 autocast on GPU

Random weights (cost does not depend on them). FLOPs are analytic by processed tokens:
1 FMA = 1 FLOP, linear layers per token, adaLN per sample, plus the attention matmuls (which
fvcore leaves out; printed separately). Targets: measured speedup >= 90% of the FLOP-ideal
one; harness overhead <= 5%. All ratios come from one run with interleaved repeats (minimum: the least disturbed
run on a shared machine; process CPU time is printed too, as it is less sensitive to load).
"""

from __future__ import annotations

import argparse
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="DiT-B/2")
    ap.add_argument("--routes", default="2-10")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
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
    times = {name: [] for name in jobs}
    for _ in range(args.repeats):  # interleaved, so machine-load drift hits every config alike
        for name, f in jobs.items():
            times[name].append(timed(f, device))
    # min over repeats: the run least disturbed by other processes on a shared machine
    med = {name: min(w for w, _ in ts) for name, ts in times.items()}
    cpu = {name: min(c for _, c in ts) for name, ts in times.items()}
    spread = max(max(w for w, _ in ts) / min(w for w, _ in ts) - 1 for ts in times.values())

    print(f"# {args.arch}, {cfg.num_tokens} tokens, routes {args.routes}, batch {args.batch}, {args.steps} Euler steps, "
          f"device {device}{' bf16' if autocast else ' fp32'}, threads {args.threads}, min of {args.repeats} "
          f"interleaved repeats (largest max/min spread {100 * spread:.0f}%)")
    base = rule_flops(rules["unguided"], cfg, args.steps)
    print(f"{'config':<14}{'wall/s':>9}{'cpu/s':>9}{'rel wall':>10}{'rel cpu':>9}{'rel FLOPs':>11}{'rel FLOPs(fvcore)':>19}")
    base_fv = rule_flops(rules["unguided"], cfg, args.steps, attention=False)
    for name, rule in rules.items():
        rf = rule_flops(rule, cfg, args.steps) / base
        rfv = rule_flops(rule, cfg, args.steps, attention=False) / base_fv
        print(f"{name:<14}{med[name]:>9.3f}{cpu[name]:>9.3f}{med[name] / med['unguided']:>10.3f}"
              f"{cpu[name] / cpu['unguided']:>9.3f}{rf:>11.3f}{rfv:>19.3f}")

    print()
    for slow, fast in (("cfg(1.5)", "sg(0.5,0.9)"), ("unguided", "unguided@0.5")):
        ideal = rule_flops(rules[slow], cfg, args.steps) / rule_flops(rules[fast], cfg, args.steps)
        wall, cpu_ = med[slow] / med[fast], cpu[slow] / cpu[fast]
        print(f"speedup {fast} over {slow}: FLOP-ideal {ideal:.3f}x; wall {wall:.3f}x = {100 * wall / ideal:.1f}% "
              f"of ideal, cpu {cpu_:.3f}x = {100 * cpu_ / ideal:.1f}% (target >= 90%)")
    for bare, ours in (("bare", "unguided"), ("bare@0.5", "unguided@0.5")):
        print(f"harness overhead {ours} vs {bare} loop: wall {100 * (med[ours] / med[bare] - 1):+.1f}%, "
              f"cpu {100 * (cpu[ours] / cpu[bare] - 1):+.1f}% (target <= 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
