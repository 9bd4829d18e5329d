"""Cost and validity of the standard errors (`<metric>_se`, sgbench.metrics.bootstrap).

    .venv/bin/python benchmarks/bench_bootstrap.py                 # both scales + validity, 1 thread
    .venv/bin/python benchmarks/bench_bootstrap.py --only quickstart

Cost: a trial's metric time with and without the standard errors, in one run, median of
interleaved repeats of process CPU time (one thread: the machine's other jobs do not count;
wall time is printed too); the target is <= 10 % extra.
- quickstart scale: the shipped classifier (128-d features, 10 logits) on 500 generated shapes
  images against the quickstart's reference (2000 held-out images): extraction + FD +
  precision/recall + class accuracy;
- Inception scale: 5000 samples with synthetic 2048-d pool, 2023-d spatial features and 1008
  logits against 10 000 reference features (ADM's batch size): FID + sFID (scipy sqrtm, as ADM) +
  IS + precision/recall. The Inception forward passes are left out, so the ratio is an upper bound.
The reference's k-NN radii and covariance root are computed once per run (cached on the
ReferenceSet), so both timings start from a warm reference.

Validity: synthetic features from a fixed distribution (128-d, 500 samples, as the quickstart):
the spread (std) of each metric over independent sample sets, against the mean standard error
the bootstrap reports from one set; for FD also the exact bootstrap (FD recomputed per replicate).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy/torch load
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgbench.metrics import bootstrap as bs  # noqa: E402
from sgbench.metrics.accumulator import ImageMetricAccumulator  # noqa: E402
from sgbench.metrics.frechet import frechet_distance  # noqa: E402
from sgbench.metrics.reference import ReferenceSet  # noqa: E402
from sgbench.metrics.stats import gaussian_from_features  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "sgbench" / "assets" / "quickstart"


class Features:
    """An 'extractor' whose input already is the feature dict (for the Inception-scale timing)."""

    def __init__(self, name, dims):
        self.name, self.feature_dims, self.device, self.batch_size = name, dims, torch.device("cpu"), 250


def timed(fn):
    """(process CPU seconds, wall seconds) of one call."""
    c0, w0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - w0


def compare(run_plain, run_se, repeats):
    """Interleaved repeats of the two; medians {'cpu': (plain, with se), 'wall': (...)}."""
    plain, se = [], []
    for _ in range(repeats):
        plain.append(timed(run_plain))
        se.append(timed(run_se))
    med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
    return {"cpu": (med(plain, 0), med(se, 0)), "wall": (med(plain, 1), med(se, 1))}


def quickstart_scale(args):
    from sgbench.data.shapes import make_shapes, shapes_reference_images
    from sgbench.metrics.extractors import get_extractor

    ex = get_extractor("classifier", weights_path=ASSETS / "classifier.safetensors", batch_size=250)
    ref_images, _ = shapes_reference_images(2000)
    ref = ReferenceSet.from_batches(ex, [ref_images])
    images, labels = make_shapes(500, seed=7)

    def trial(bootstrap):
        acc = ImageMetricAccumulator(ex, bootstrap=bootstrap, seed=0)
        for i in range(0, 500, 250):  # the quickstart's batch size
            acc.update(images[i:i + 250], labels[i:i + 250])
        return acc.compute(ref)

    out = trial(args.replicates)  # warms the reference (radii, covariance root) and the extractor
    times = compare(lambda: trial(0), lambda: trial(args.replicates), args.repeats)
    report("quickstart scale (classifier, 500 samples, B=%d, %d repeats)" % (args.replicates, args.repeats), times, out)


def inception_scale(args):
    rng = np.random.default_rng(0)
    n, m = 5000, 10000

    def feats(count, shift):  # low intrinsic dimension, non-negative: like pooled ReLU features
        z = rng.standard_normal((count, 64)) + shift
        return {"pool": np.maximum(z @ mix_pool, 0).astype(np.float32) + 0.01 * rng.random((count, 2048), np.float32),
                "spatial": np.maximum(z @ mix_spatial, 0).astype(np.float32),
                "logits": (z[:, :16] @ mix_logits).astype(np.float32)}

    mix_pool = rng.standard_normal((64, 2048)) / 8
    mix_spatial = rng.standard_normal((64, 2023)) / 8
    mix_logits = rng.standard_normal((16, 1008))
    real, fake = feats(m, 0.0), feats(n, 0.15)
    ex = Features("inception", {"pool": 2048, "spatial": 2023, "logits": 1008})
    ref = ReferenceSet({k: gaussian_from_features(real[k].astype(np.float64)) for k in ("pool", "spatial")},
                       real["pool"])
    batches = [{k: torch.from_numpy(v[i:i + 250]) for k, v in fake.items()} for i in range(0, n, 250)]

    def trial(bootstrap):
        acc = ImageMetricAccumulator(ex, bootstrap=bootstrap, seed=0)
        for b in batches:
            acc.update_features(b)
        return acc.compute(ref)

    t0 = time.perf_counter()
    out = trial(args.replicates)
    print(f"  (first trial, incl. the reference k-NN radii, computed once per run: {time.perf_counter() - t0:.1f} s)")
    times = compare(lambda: trial(0), lambda: trial(args.replicates), args.big_repeats)
    report("Inception scale (5000 x 2048 pool, 2023 spatial, 1008 logits; 10k reference; B=%d, %d repeats)"
           % (args.replicates, args.big_repeats), times, out)


def report(title, times, out):
    print(title)
    for kind, (plain, with_se) in times.items():
        print(f"  {kind:4s}: metric time {plain:.3f} s, with standard errors {with_se:.3f} s: "
              f"+{with_se - plain:.3f} s = {100 * (with_se - plain) / plain:.1f} % (target <= 10 %)")
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in out.items()))


def validity(args):
    """Spread over independent sample sets vs the standard error from one set."""
    rng = np.random.default_rng(1)
    d, n = 128, 500
    spec = 1.0 / np.arange(1, d + 1) ** 0.7
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    mix = q * np.sqrt(spec)
    logit_map = rng.standard_normal((d, 10)) * 2

    def draw(count, shift):
        z = rng.standard_normal((count, d))
        z = z + 0.5 * (z ** 2 - 1) * (rng.random((count, 1)) < 0.3)  # not Gaussian
        x = (z @ mix.T + shift).astype(np.float32)
        return x, (x @ logit_map).astype(np.float32)

    real, _ = draw(2000, 0.0)
    ref = ReferenceSet({"pool": gaussian_from_features(real.astype(np.float64))}, real)
    ex = Features("inception", {"pool": d, "logits": 10})
    shift = 0.3 * np.sqrt(spec) * rng.standard_normal(d)
    values, ses = {}, {}
    exact = []
    for r in range(args.draws):
        x, logits = draw(n, shift)
        acc = ImageMetricAccumulator(ex, bootstrap=args.replicates, seed=r, distance_dtype="float32")
        acc.update_features({"pool": torch.from_numpy(x), "logits": torch.from_numpy(logits)})
        out = acc.compute(ref)
        for k, v in out.items():
            (ses if k.endswith("_se") else values).setdefault(k.removesuffix("_se"), []).append(v)
        if r < args.exact_draws:  # the exact bootstrap: FD recomputed on each resample
            w = bs.poisson_weights(r, 0, n, args.replicates)
            g = ref.gaussians["pool"]
            reps = [frechet_distance(*(lambda s: (s.mu, s.sigma))(gaussian_from_features(np.repeat(x, wb, 0).astype(np.float64))),
                                     g.mu, g.sigma) for wb in w]
            exact.append(bs.replicate_se(reps))
    print(f"validity ({args.draws} independent sets of {n} samples, {d}-d features, B={args.replicates}):")
    print("  metric      mean      std over sets   mean bootstrap se   ratio")
    for k in values:
        sd, se = float(np.std(values[k], ddof=1)), float(np.mean(ses[k]))
        print(f"  {k:10s}  {np.mean(values[k]):8.4g}  {sd:13.4g}   {se:17.4g}   {se / sd:5.2f}")
    if exact:
        sd = float(np.std(values["fid"], ddof=1))
        print(f"  fid, exact bootstrap (FD per replicate, {len(exact)} sets): se {np.mean(exact):.4g}, "
              f"ratio {np.mean(exact) / sd:.2f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["quickstart", "inception", "validity"], nargs="*")
    ap.add_argument("--replicates", type=int, default=200, help="bootstrap replicates (suite default: 200)")
    ap.add_argument("--repeats", type=int, default=15, help="timing repeats at the quickstart scale")
    ap.add_argument("--big-repeats", type=int, default=3, help="timing repeats at the Inception scale")
    ap.add_argument("--draws", type=int, default=200, help="independent sample sets for the validity check")
    ap.add_argument("--exact-draws", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    only = args.only or ["quickstart", "inception", "validity"]
    if "quickstart" in only:
        quickstart_scale(args)
    if "inception" in only:
        inception_scale(args)
    if "validity" in only:
        validity(args)


if __name__ == "__main__":
    main()
