"""A synthetic run directory (trials.csv, suite.yaml, env.json, sample grids) with a smooth,
paper-like FID landscape: for demos of `sgbench report` and for tests. Nothing here is a
measurement.

    python -m sgbench.report.synthetic results/demo   # then: sgbench report results/demo
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from sgbench.metrics.registry import CLASS_ACC, GFLOPS, IMAGES_PER_S, image_columns

ADM = image_columns("inception")  # fid, sfid, is, precision, recall
COLUMNS = ["trial_id", "role", "method", "gamma_strong", "gamma_weak", "omega", "schedule",
           "n_samples", "seed", *ADM.keys(), CLASS_ACC.key, GFLOPS.key, IMAGES_PER_S.key, "status"]
DENSE_GFLOPS = 118.6  # SiT-XL/2 forward, per image and step-free (fvcore convention)


def landscape(gs: float, gw: float, omega: float) -> float:
    """A valley in (γ_strong, γ_weak) that moves to higher sparsity as ω grows (paper Fig. 6)."""
    cs, cw = 0.1 + 0.15 * (omega - 1.3), 0.55 + 0.2 * (omega - 1.3)
    return 2.2 + 9.0 * (gs - cs) ** 2 + 6.0 * (gw - cw) ** 2 + 1.5 * (omega - 1.6) ** 2


def trial_rows(seeds=(0, 1, 2), gammas=(0.0, 0.25, 0.5, 0.75, 0.9), omegas=(1.3, 1.5, 1.7, 1.9),
               noise: float = 0.05, rng_seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(rng_seed)
    rows: list[dict] = []

    def add(role, method, gs, gw, omega, fid, gflops, schedule=""):
        for seed in seeds:
            f = fid + noise * rng.standard_normal()
            rows.append({
                "trial_id": f"t{len(rows):04d}", "role": role, "method": method, "gamma_strong": gs,
                "gamma_weak": gw, "omega": omega, "schedule": schedule, "n_samples": 5000, "seed": seed,
                ADM.fd: round(f, 4), ADM.sfd: round(1.9 * f + 0.4, 4), ADM.inception_score: round(320 - 25 * f, 3),
                ADM.precision: round(0.86 - 0.01 * f, 4), ADM.recall: round(0.5 + 0.02 * (omega or 1.0), 4),
                CLASS_ACC.key: round(0.9 - 0.02 * f, 4), GFLOPS.key: round(gflops, 3),
                IMAGES_PER_S.key: round(5.0e3 / gflops, 3), "status": "complete"})

    add("baseline", "none", 0.0, 0.0, "", 9.6, DENSE_GFLOPS)
    add("baseline", "cfg", 0.0, 0.0, 1.5, 3.4, 2 * DENSE_GFLOPS)
    for omega in omegas:
        for gs in gammas:
            for gw in gammas:
                if gs < gw:
                    cost = DENSE_GFLOPS * ((1 - 0.9 * gs) + (1 - 0.9 * gw))
                    add("search", "sg", gs, gw, omega, landscape(gs, gw, omega), cost)
    add("search", "sg", "cosine:0:0.6", "cosine:0.6:0", 1.5, 2.05, 1.5 * DENSE_GFLOPS, schedule="cosine")
    return rows


def sample_images(n: int = 16, size: int = 32, rng_seed: int = 0) -> np.ndarray:
    """n uint8 [size, size, 3] images: a bright disk on a dark gradient (shapes-like stand-ins)."""
    rng = np.random.default_rng(rng_seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for k in range(n):
        bg = (0.1 + 0.25 * (xx * rng.random() + yy * rng.random()))[..., None] * rng.random(3)
        cy, cx, r = rng.uniform(0.3, 0.7, 2).tolist() + [rng.uniform(0.12, 0.3)]
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)[..., None]
        out[k] = (255 * np.where(disk, 0.35 + 0.65 * rng.random(3), bg)).clip(0, 255).astype(np.uint8)
    return out


def write_run(path: str | Path, rows: list[dict] | None = None, suite: str | None = None,
              grids: bool = True, captions: list[str] | None = None) -> Path:
    """Write a run directory in the layout of docs/design.md ("run directory"); `captions`
    (prompts) make its sample grids text-to-image ones, sample i captioned captions[i % len]."""
    path = Path(path)
    (path / "samples").mkdir(parents=True, exist_ok=True)
    rows = trial_rows() if rows is None else rows
    columns = list(COLUMNS) + [k for r in rows for k in r if k not in COLUMNS]
    columns = list(dict.fromkeys(columns))
    with open(path / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, restval="")
        w.writeheader()
        w.writerows(rows)
    (path / "suite.yaml").write_text(suite if suite is not None else
                                     "name: synthetic\nmodel: {sparsity: routing}\n")
    (path / "env.json").write_text(json.dumps({"device": "cpu", "git_commit": "0000000",
                                               "start_time": "2026-01-01T00:00:00Z"}))
    if grids:
        from sgbench.run.sample_grid import write_grid

        for k, r in enumerate(rows):
            images = sample_images(16, 32, k)
            caps = [captions[i % len(captions)] for i in range(16)] if captions else []
            write_grid(path / "samples" / f"{r['trial_id']}.png", images, range(16), caps)
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m sgbench.report.synthetic RUN_DIR")
    print(write_run(sys.argv[1]))
