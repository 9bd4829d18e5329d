"""Routed vs dense forward wall time of DiT-B/2 on CPU, next to the ratio of processed tokens.

    .venv/bin/python benchmarks/bench_routing.py [--batch 8] [--reps 7] [--threads 1] [--route 2-8]

DiT-B/2 at 256px latents: input 32x32x4, 256 tokens, 12 blocks, width 768. The default route
2-8 is CompVis/tread's own DiT-B/2 setting (configs/model/tread.yaml: start_layer_idx 2,
end_layer_idx 8, 0-based and inclusive): blocks 0-1 and 9-11 stay dense, as r_{2->24} leaves
the last three of DiT-XL/2's 28 blocks dense in the paper. "token-blocks" counts the tokens
each block processes, summed over blocks; its ratio is the ideal (linear-cost) speed-up.
Timings interleave the settings and report medians, so background load hits all of them alike;
on a shared machine the CPU-time ratio (this process's CPU seconds) is the steadier figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sgbench.models import DiT, Route, dit_config, num_kept


def token_blocks(depth: int, n_tokens: int, route: Route, gamma: float) -> int:
    routed = route.end - route.start + 1
    return (depth - routed) * n_tokens + routed * num_kept(n_tokens, gamma)


def block_flops(n: int, width: int) -> float:
    """One DiT block, 1 FMA = 2 FLOPs: qkv + proj + MLP (24 N D^2) and the two attention matmuls (4 N^2 D)."""
    return 24 * n * width**2 + 4 * n * n * width


def flops(depth: int, n_tokens: int, width: int, route: Route, gamma: float) -> float:
    routed = route.end - route.start + 1
    return (depth - routed) * block_flops(n_tokens, width) + routed * block_flops(num_kept(n_tokens, gamma), width)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 = steady on a shared 2-core box)")
    ap.add_argument("--route", default="2-8")
    ap.add_argument("--gammas", default="0.5,0.9")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    route = Route.parse(args.route)
    model = DiT(dit_config("DiT-B/2", input_size=32, num_classes=1000, routes=[route])).eval()
    x = torch.randn(args.batch, 4, 32, 32)
    t = torch.rand(args.batch)
    y = torch.randint(0, 1000, (args.batch,))
    gammas = [0.0] + [float(g) for g in args.gammas.split(",")]
    gens = {g: torch.Generator().manual_seed(1) for g in gammas}

    times: dict[float, list[float]] = {g: [] for g in gammas}
    cpu: dict[float, list[float]] = {g: [] for g in gammas}
    with torch.inference_mode():
        for g in gammas:  # warm-up
            model(x, t, y, gamma=g, generator=gens[g])
        for _ in range(args.reps):
            for g in gammas:
                start, start_cpu = time.perf_counter(), time.process_time()
                model(x, t, y, gamma=g, generator=gens[g])
                times[g].append(time.perf_counter() - start)
                cpu[g].append(time.process_time() - start_cpu)

    n, depth = model.num_tokens, model.config.depth
    dense_tb, dense_t = token_blocks(depth, n, route, 0.0), statistics.median(times[0.0])
    dense_cpu = statistics.median(cpu[0.0])
    print(f"DiT-B/2, {n} tokens, batch {args.batch}, route {route}, {args.threads} thread(s), "
          f"median of {args.reps}, torch {torch.__version__}")
    width = model.config.hidden_size
    print(f"{'gamma':>6} {'kept':>5} {'ms/forward':>11} {'time ratio':>11} {'CPU-time ratio':>15} "
          f"{'token-block ratio':>18} {'block FLOP ratio':>17}")
    for g in gammas:
        med, med_cpu = statistics.median(times[g]), statistics.median(cpu[g])
        ratio_tb = token_blocks(depth, n, route, g) / dense_tb
        ratio_fl = flops(depth, n, width, route, g) / flops(depth, n, width, route, 0.0)
        print(f"{g:6.2f} {num_kept(n, g):5d} {1000 * med:11.1f} {med / dense_t:11.3f} {med_cpu / dense_cpu:15.3f} "
              f"{ratio_tb:18.3f} {ratio_fl:17.3f}")


if __name__ == "__main__":
    main()
