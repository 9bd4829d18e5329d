"""sgbench's HPSv3 client and worker against the REAL `hpsv3` package, with a tiny random
Qwen2-VL on CPU (no download, no 7B model; the scores mean nothing, the plumbing is real).

    SGBENCH_HPSV3_PYTHON=/tmp/hpsv3-env/bin/python .venv/bin/python benchmarks/hpsv3_tiny_check.py

1. With the hpsv3 environment's python (a subprocess): `sgbench/rehearse/hpsv3_tiny.py` builds a
   tiny random Qwen2-VL directory (hidden 64, 2 layers, vision depth 2, offline-trained tokenizer)
   and the HPSv3 checkpoint hpsv3's own `create_model_and_processor` makes from it (the stand-in
   `sgbench run --rehearse` uses too).
2. With sgbench's python: `HPSv3Client` starts the real `hpsv3_worker.py` with that python,
   scores generated PNGs (different sizes and prompt lengths) twice in batches of 2, and the
   scores are checked (finite, one per image, identical across the two calls, equal to one
   padded batch of all images) and aggregated per category.

`tests/test_t2i_hpsv3_real.py` (marked slow) runs the same check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ENV_VAR = "SGBENCH_HPSV3_PYTHON"

PROMPTS = [
    ("a red fox sitting in the snow, watercolor", "Animals"),
    ("a glass skyscraper at dusk", "Architecture"),
    ("a bowl of ramen with a soft boiled egg", "Food"),
    ("a misty lake surrounded by pine trees", "Natural Scenery"),
    ("an old steam locomotive crossing a bridge", "Transportation"),
]


def _pngs(out: Path, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = out / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 256, (64 + 16 * i, 96, 3), dtype=np.uint8)).save(p)
        paths.append(str(p))
    return paths


def run_check(hps_python: str, work: Path, batch_size: int = 2) -> dict:
    """Build (in the hpsv3 env), then score with sgbench's client + real worker; raises on failure."""
    import numpy as np

    from sgbench.rehearse.hpsv3 import build_tiny_hpsv3
    from sgbench.t2i.hpsv3_client import HPSv3Client, HPSv3WorkerConfig, aggregate

    work = Path(work)
    t0 = time.perf_counter()
    built = build_tiny_hpsv3(hps_python, work)
    t_build = time.perf_counter() - t0

    images = _pngs(work, len(PROMPTS))
    prompts = [p for p, _ in PROMPTS]
    cats = [c for _, c in PROMPTS]
    # config=None on purpose: the worker rewrites the package's own HPSv3_7B.yaml, as for the 7B model
    cfg = HPSv3WorkerConfig(python=hps_python, base_model=built["base_model"], checkpoint=built["checkpoint"],
                            device="cpu", batch_size=batch_size, startup_timeout=600)
    t0 = time.perf_counter()
    with HPSv3Client(cfg) as client:
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        first = client.score(images, prompts)
        t_score = time.perf_counter() - t0
        second = client.score(images, prompts)
        mu, sigma = client.score_batch(images, prompts)  # one padded batch of all images
        info = client.info
    assert client.proc.returncode == 0, client.proc.returncode
    assert first.shape == (len(images),) and np.isfinite(first).all(), first
    assert np.array_equal(first, second), (first, second)
    # padding a batch (prompts and images of different lengths) must not change a score
    assert np.isfinite(sigma).all() and np.allclose(mu, first, rtol=1e-4, atol=1e-6), (mu, first)
    summary = aggregate(first, cats)
    assert summary["counts"] == {c: 1 for c in cats}
    assert summary["categories"] == {c: float(s) for c, s in zip(cats, first)}
    assert np.isclose(summary["overall"], float(np.mean(first)))
    return {"worker": info, "scores": first.tolist(), "sigma_first": float(sigma[0]), "summary": summary,
            "build": built, "seconds": {"build": round(t_build, 2), "worker_start": round(t_start, 2),
                                        f"score_{len(images)}_images": round(t_score, 2)}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=os.environ.get(ENV_VAR), help=f"the hpsv3 env's python (default ${ENV_VAR})")
    p.add_argument("--work", default=None, help="folder for the tiny model and images (default: a temp dir)")
    args = p.parse_args(argv)
    if not args.python:
        p.error(f"set ${ENV_VAR} or --python to the python of an environment with hpsv3 installed")
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = run_check(args.python, Path(args.work or tmp))
    print(json.dumps(res, indent=1))
    print("OK: real hpsv3 worker scored", len(res["scores"]), "images;", res["seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
