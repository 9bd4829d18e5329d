"""Search efficiency on the quickstart model: how much of a full grid's sampling each search
strategy needs to find the grid's optimum, and how much of its Pareto front it recovers.

    .venv/bin/python benchmarks/search_efficiency.py              # replay every strategy (minutes)
    .venv/bin/python benchmarks/search_efficiency.py --seeds 3    # fewer search seeds (CI)
    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/search_efficiency.py grid --jobs 2  # ground truth, once (~1 h CPU)

Ground truth (`grid`): suites/quickstart.yaml's model, sampler and metrics (shapes DiT, 16 Euler
steps, FD on the shipped classifier against 2000 held-out shapes, bootstrap standard errors) at
`N_SAMPLES` = 250 samples a point, over the grid its small grid generalises to — `SPACE` below:
gamma_weak on the 0.1 lattice, gamma_strong on its even tenths (25 pairs gamma_strong <
gamma_weak) x omega {3, 6, 9, 12} (the quickstart's three and one beyond, so the optimum is
bracketed) = 100 points — every point streamed to the full
sample count through sgbench's own stages (`sgbench.run.stages.ClassStages`: the code
`sgbench run` samples and measures with) and measured at every fidelity of `FIDELITIES` on the
way (sample i is fixed by (seed, i), so FD@50 is the FD of the first 50 samples of FD@250's
stream, exactly what a pruned trial sees). The table is benchmarks/data/search_efficiency_grid.csv,
one row per point and sample count, in trials.csv's column names; its header records the command
and the machine. `grid` resumes: points already in a shard file (by value) are not measured again.

Replay (default): every strategy runs through the real `sgbench run` machinery — `run_suite`,
the Runner, sgbench's strategies (the rung-synchronous grid, `OptunaStrategy`) and Optuna's real
samplers and pruners on a real SQLite study — with `TableStages` in place of the model: a trial's
metrics at n samples are the table's row for its point at n, and every streamed sample is counted.
Each strategy runs with several search seeds; the result table (docs/search-efficiency.md) gives
samples spent against the grid's, the best FD found against the grid optimum and its standard
error, and the Pareto front's hypervolume (FD vs GFLOPs, fixed reference point) against the grid's.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUICKSTART = ROOT / "suites" / "quickstart.yaml"
TABLE = ROOT / "benchmarks" / "data" / "search_efficiency_grid.csv"
# The quickstart grid generalised: gamma_weak on the 0.1 lattice, gamma_strong on its even
# tenths (25 pairs gamma_strong < gamma_weak) and omega {3, 6, 9, 12} (the quickstart's own values
# and one beyond: the best FD of {3, 6, 9} lay at omega 9, the grid's edge): 100 points. (The full
# 0.1 lattice, 45 pairs x 4 omega = 180 points, did not fit in the hour this shared 2-core machine
# had for it; gamma_strong's cost is monotone, so the even tenths keep its whole range.)
SPACE = {
    "gamma_strong": {"low": 0.0, "high": 0.8, "step": 0.2},
    "gamma_weak": {"low": 0.1, "high": 0.9, "step": 0.1},
    "omega": {"low": 3.0, "high": 12.0, "step": 3.0},
}
# Every point at 250 samples, not the quickstart's 500: 135 x 500 samples took ~2 h of one CPU core
# here (measured 50-75 s a point), 250 keeps the ground truth to about an hour. The FD standard
# errors are the bootstrap's at 250 samples (larger by about sqrt 2).
N_SAMPLES = 250
FIDELITIES = (25, 50, 100)  # recorded below N_SAMPLES on the way (one stream per point)
GT_COMMAND = "OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/search_efficiency.py grid --jobs 2"
PARAMS = ("gamma_strong", "gamma_weak", "omega")


# ---- the benchmark's suite -----------------------------------------------------------------------

def suite_data(search: Optional[dict] = None) -> dict:
    """suites/quickstart.yaml's model, sampler and metrics with the benchmark's search (default:
    the full grid) and no baselines."""
    from sgbench.config.loader import parse_yaml

    data = parse_yaml(QUICKSTART.read_text(encoding="utf-8"), str(QUICKSTART))
    data = {k: v for k, v in data.items() if k not in ("methods", "search", "workers")}
    data["name"] = "search_efficiency"
    data["description"] = "benchmarks/search_efficiency.py"
    data["search"] = search if search is not None else {"method": "sg", "sampler": "grid", "space": SPACE}
    data["metrics"] = {**data["metrics"], "n_samples": N_SAMPLES}
    data.setdefault("report", {})["sample_grid"] = 0
    return data


def fingerprint() -> str:
    """What the table depends on: the quickstart's model, sampler and metrics sections, the space
    and the fidelities (the replay refuses a table made for something else)."""
    data = suite_data()
    key = {k: data.get(k) for k in ("model", "sampler", "metrics", "seeds", "search")}
    key["fidelities"] = list(FIDELITIES)
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def write_suite(data: dict, directory: Path) -> Path:
    import yaml

    path = Path(directory) / "suite.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def key_of(point: dict) -> tuple:
    return tuple(round(float(point[p]), 6) for p in PARAMS)


# ---- ground truth -----------------------------------------------------------------------------------

def measure_points(indices: list[int], part: Path, log=print) -> None:
    """Stream every grid point of `indices` to the full sample count, measuring at each fidelity;
    append one row per (point, fidelity) to `part` (points already there are skipped)."""
    import torch

    from sgbench.config.loader import load_suite
    from sgbench.guidance.vocabulary import GuidanceConfig
    from sgbench.run.stages import ClassStages
    from sgbench.search.space import grid_points

    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_suite(write_suite(suite_data(), Path(tmp)))
    suite = loaded.suite
    torch.set_num_threads(suite.threads or 1)
    points = grid_points(suite.search.space)
    # points measured by any earlier invocation, by value (another --jobs splits the points
    # differently; another SPACE numbers them differently)
    done = {key_of(r) for other in _parts_of(part) for r in read_rows(other)}
    todo = [i for i in indices if key_of(points[i]) not in done]
    if not todo:
        return
    stages = ClassStages(loaded, "cpu", log)
    t0 = time.perf_counter()
    stages.load()
    log(f"{part.name}: loaded in {time.perf_counter() - t0:.1f}s; {len(todo)} of {len(indices)} points to measure")
    n_full = suite.metrics.n_samples
    stops = [*FIDELITIES, n_full]
    seed = suite.seeds[0]
    new = not part.exists()
    with open(part, "a", newline="", encoding="utf-8") as f:
        writer = None
        for k, i in enumerate(todo):
            p = points[i]
            setting = GuidanceConfig(suite.search.method, p["omega"], p["gamma_strong"], p["gamma_weak"])
            acc = stages.accumulator(trial_id=f"p{i}", seed=seed)
            started, rows, start = time.perf_counter(), [], 0
            for n in stops:
                for _idx, images, labels in stages.stream(setting, seed, start, n):
                    acc.update(images, labels)
                start = n
                rows.append({"point": i, **p, "n_samples": n, "seed": seed, **stages.compute(acc),
                             "gflops": stages.gflops(setting), "gflops_attn": stages.gflops_attn(setting),
                             "seconds": round(time.perf_counter() - started, 2)})
            if writer is None:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                if new:
                    writer.writeheader()
            writer.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
            obj = suite.search.objective
            log(f"{part.name}: [{k + 1}/{len(todo)}] point {i} {setting.describe()}: "
                + ", ".join(f"{r[obj]:.3f}@{r['n_samples']}" for r in rows)
                + f" ({time.perf_counter() - started:.1f}s)")


def _parts_of(part: Path) -> list[Path]:
    """Every shard file of the table `part` belongs to (`.<table>.part<j>`)."""
    prefix = part.name[: part.name.rindex(".part") + len(".part")]
    return sorted(part.parent.glob(prefix + "*"))


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def ground_truth(out: Path, jobs: int) -> None:
    """Measure the full grid in `jobs` single-thread processes (each resumable), then write the
    table atomically with its header."""
    from sgbench.config.loader import load_suite
    from sgbench.search.space import grid_points

    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_suite(write_suite(suite_data(), Path(tmp)))
    n_points = len(grid_points(loaded.suite.search.space))
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = [out.with_name(f".{out.name}.part{j}") for j in range(jobs)]
    measured_before = len({key_of(r) for part in _parts_of(parts[0]) for r in read_rows(part)})
    started = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, __file__, "_shard", str(j), str(jobs), str(parts[j])], env=env)
             for j in range(jobs)]
    codes = [p.wait() for p in procs]
    if any(codes):
        sys.exit(f"ground truth: shard exit codes {codes}; rerun the same command to continue")
    index = {key_of(p): i for i, p in enumerate(grid_points(loaded.suite.search.space))}
    rows = {}
    for part in _parts_of(parts[0]):
        for r in read_rows(part):
            if key_of(r) in index:  # renumbered in this grid (a shard file may hold other points)
                rows[(key_of(r), r["n_samples"])] = {**r, "point": index[key_of(r)]}
    rows = list(rows.values())
    rows.sort(key=lambda r: (int(r["point"]), int(r["n_samples"])))
    if len({int(r["point"]) for r in rows}) != n_points:
        sys.exit(f"ground truth: {len({r['point'] for r in rows})} of {n_points} points measured")
    seconds = sum(float(r["seconds"]) for r in rows if int(r["n_samples"]) == loaded.suite.metrics.n_samples)
    header = [
        "# benchmarks/search_efficiency.py ground truth: every point of the benchmark's grid streamed to",
        "# metrics.n_samples through sgbench.run.stages.ClassStages, measured at each n_samples of this table",
        "# (one stream per point: the FD at n samples is the FD of the stream's first n samples).",
        f"# suite: suites/quickstart.yaml (model, sampler, metrics, seeds) with search.space {json.dumps(SPACE)}",
        f"# fingerprint: {fingerprint()}",
        f"# regenerate: {GT_COMMAND}",
        f"# measured: {time.strftime('%Y-%m-%d')}, {_git_commit()}, {os.cpu_count()} cores, 1 torch thread per job,"
        f" {jobs} job(s), niced, beside other work; the points' streams {seconds / 60:.1f} min in all,"
        f" this invocation's wall {(time.perf_counter() - started) / 60:.1f} min"
        f" ({n_points - min(measured_before, n_points)} of the points; the others from earlier shard files)",
        "# columns `seconds`: time of the point's stream up to that row (informational, machine-dependent)",
    ]
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write("\n".join(header) + "\n")
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, out)
    for part in parts:
        part.unlink()
    print(f"wrote {out}: {n_points} points x {len(FIDELITIES) + 1} sample counts ({seconds / 60:.1f} min of point streams)")


def _git_commit() -> str:
    try:
        return "commit " + subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                          capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"


# ---- the table, and the stages that replay it ------------------------------------------------------

@dataclass
class GridTable:
    """Metric columns per (point, sample count); points in grid order."""

    points: list[dict]  # {gamma_strong, gamma_weak, omega}
    values: dict  # (point index, n_samples) -> {column: float}
    sample_counts: list[int]  # ascending; the last is the full count
    header: list[str] = field(default_factory=list)

    @classmethod
    def from_rows(cls, rows: list[dict], header: Optional[list[str]] = None) -> "GridTable":
        points: dict[int, dict] = {}
        values = {}
        for r in rows:
            i, n = int(r["point"]), int(r["n_samples"])
            points.setdefault(i, {p: float(r[p]) for p in PARAMS})
            values[(i, n)] = {k: float(v) for k, v in r.items()
                              if k not in (*PARAMS, "point", "n_samples", "seed", "seconds") and v not in ("", None)}
        counts = sorted({n for _, n in values})
        if sorted(points) != list(range(len(points))):
            raise ValueError("table: points must be numbered 0..N-1")
        missing = [(i, n) for i in points for n in counts if (i, n) not in values]
        if missing:
            raise ValueError(f"table: {len(missing)} (point, n_samples) rows missing, e.g. {missing[0]}")
        return cls([points[i] for i in range(len(points))], values, counts, list(header or []))

    @classmethod
    def read(cls, path: Path) -> "GridTable":
        with open(path, encoding="utf-8") as f:
            header = [line.rstrip("\n") for line in f if line.startswith("#")]
        return cls.from_rows(read_rows(path), header)

    @property
    def full(self) -> int:
        return self.sample_counts[-1]

    def index(self, point: dict) -> int:
        if not hasattr(self, "_index"):
            self._index = {key_of(p): i for i, p in enumerate(self.points)}
        try:
            return self._index[key_of(point)]
        except KeyError:
            raise KeyError(f"point {point} is not in the table") from None

    def at(self, i: int, n: int) -> dict:
        if (i, n) not in self.values:
            raise KeyError(f"the table has no row for point {i} at {n} samples (it has {self.sample_counts})")
        return self.values[(i, n)]

    def column(self, name: str, n: Optional[int] = None) -> np.ndarray:
        n = self.full if n is None else n
        return np.array([self.values[(i, n)][name] for i in range(len(self.points))])


class _TableAccumulator:
    """Counts the samples of one trial's stream and which table point they belong to."""

    def __init__(self):
        self.count = 0
        self.point: Optional[int] = None

    def update(self, images, labels) -> None:
        positions, point = labels[:, 0], int(labels[0, 1])
        if self.point not in (None, point) or positions[0] != self.count:
            raise AssertionError("a trial's stream is not one contiguous prefix of one point's samples")
        self.point = point
        self.count += len(positions)


class TableStages:
    """sgbench's `Stages` protocol answered from a `GridTable`: a trial's metrics after n samples
    are the table's row for its point at n, so the real Runner, strategies and Optuna decide
    exactly as they would on the model. Every sample streamed is counted in `spent`."""

    def __init__(self, table: GridTable, loaded, batch_size: int):
        self.table, self.loaded, self.batch_size = table, loaded, batch_size
        self.suite = loaded.suite
        self.run_dir = None
        self.spent = 0
        self.streams: list[tuple[int, int, int]] = []  # (point, start, stop)
        self.cells = None  # set by run_suite (one cell: the table is of one checkpoint)

    def validate(self):
        pass

    def use(self, cell):
        pass  # the table holds one model's numbers

    def load(self):
        pass

    def close(self):
        pass

    def _point(self, setting) -> int:
        return self.table.index({"gamma_strong": setting.gamma_strong, "gamma_weak": setting.gamma_weak,
                                 "omega": setting.omega})

    def stream(self, setting, seed, start, stop):
        i = self._point(setting)
        self.spent += stop - start
        self.streams.append((i, start, stop))
        for a in range(start, stop, self.batch_size):
            b = min(a + self.batch_size, stop)
            labels = np.stack([np.arange(a, b), np.full(b - a, i)], axis=1)  # (position, table point)
            yield np.arange(a, b), np.zeros((b - a, 1, 1, 3), np.uint8), labels

    def accumulator(self, trial_id=None, seed=None):
        return _TableAccumulator()

    def compute(self, acc) -> dict:
        keys = self.suite.metrics.metric_keys
        row = self.table.at(acc.point, acc.count)
        return {k: v for k, v in row.items() if k in keys or k.removesuffix("_se") in keys}

    def gflops(self, setting) -> float:
        return self.table.at(self._point(setting), self.table.full)["gflops"]

    def gflops_attn(self, setting) -> float:
        return self.table.at(self._point(setting), self.table.full)["gflops_attn"]


# ---- replaying one strategy -------------------------------------------------------------------------

@dataclass
class Replay:
    """What one strategy did with one search seed."""

    strategy: str
    seed: int
    spent: int  # samples streamed
    trials: int  # trials.csv rows
    complete: list[int]  # table points measured at the full sample count
    exit_code: int
    seconds: float


def replay(table: GridTable, search: dict, seed: int, base: Optional[dict] = None, strategy: str = "",
           workdir: Optional[Path] = None) -> Replay:
    """Run `sgbench run` (run_suite: the Runner, sgbench's strategies, Optuna's samplers and pruners,
    a SQLite study) with the search section `search` and search seed `seed`, on `TableStages`."""
    import contextlib
    import io

    from sgbench.run.main import run_suite
    from sgbench.search.store import read_trials_csv

    data = copy.deepcopy(base if base is not None else suite_data())
    data["search"] = {**data["search"], **copy.deepcopy(search), "seed": seed}
    data["metrics"] = {**data["metrics"], "n_samples": table.full, "throughput": "off"}
    data["report"] = {"enabled": False, "sample_grid": 0}
    holder = {}

    def stages_factory(loaded, device, log):
        holder["stages"] = TableStages(table, loaded, loaded.suite.sampler.batch_size)
        return holder["stages"]

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = write_suite(data, Path(tmp))
        captured = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stderr(captured):
            result = run_suite(path, out=str(Path(tmp) / "results"), report=False, progress=False,
                               argv=["search_efficiency"], log=lambda m: None, stages_factory=stages_factory)
        seconds = time.perf_counter() - t0
        if result.exit_code != 0:
            raise RuntimeError(f"replay of {strategy or search} seed {seed} exited {result.exit_code}:\n"
                               + captured.getvalue()[-2000:])
        rows = read_trials_csv(result.run_dir / "trials.csv")
    stages = holder["stages"]
    complete = [table.index({p: float(r[p]) for p in PARAMS}) for r in rows
                if r["status"] == "complete" and int(r["n_samples"]) == table.full]
    return Replay(strategy, seed, stages.spent, len(rows), complete, result.exit_code, seconds)


# ---- scores -----------------------------------------------------------------------------------------

def hypervolume_2d(points, reference) -> float:
    """Area dominated by `points` (both coordinates minimised) and bounded by `reference`."""
    rx, ry = reference
    inside = sorted((float(x), float(y)) for x, y in points if x < rx and y < ry)
    area, best_y = 0.0, ry
    for x, y in inside:  # ascending x: each point that lowers the staircase adds a slab
        if y < best_y:
            area += (rx - x) * (best_y - y)
            best_y = y
    return area


@dataclass
class Scores:
    objective: str  # the table column optimised (lower is better)
    optimum: float  # the grid's best value at the full sample count
    optimum_se: float
    optimum_point: int
    reference: tuple[float, float]  # hypervolume reference point (gflops, objective)
    grid_hv: float
    grid_samples: int


def grid_scores(table: GridTable, objective: str) -> Scores:
    values = table.column(objective)
    best = int(np.argmin(values))
    gflops = table.column("gflops")
    # fixed reference point: the grid's worst cost and worst quality (its nadir)
    ref = (float(gflops.max()), float(values.max()))
    hv = hypervolume_2d(zip(gflops, values), ref)
    se = table.at(best, table.full).get(f"{objective}_se", math.nan)
    return Scores(objective, float(values[best]), float(se), best, ref, hv, len(table.points) * table.full)


def score(table: GridTable, scores: Scores, r: Replay) -> dict:
    values = table.column(scores.objective)
    gflops = table.column("gflops")
    found = min((values[i] for i in r.complete), default=math.nan)
    gap = found - scores.optimum
    hv = hypervolume_2d([(gflops[i], values[i]) for i in set(r.complete)], scores.reference)
    return {"spent": r.spent / scores.grid_samples, "best": found, "gap": gap / scores.optimum,
            "within_2pct": bool(gap <= 0.02 * scores.optimum), "within_se": bool(gap <= scores.optimum_se),
            "hit": bool(gap <= max(0.02 * scores.optimum, scores.optimum_se)),
            "hv": hv / scores.grid_hv, "trials": r.trials, "seconds": r.seconds}


# ---- the strategies ------------------------------------------------------------------------------

def _lattice(spec: dict) -> list[float]:
    steps = round((spec["high"] - spec["low"]) / spec["step"])
    return [round(spec["low"] + i * spec["step"], 6) for i in range(steps + 1)]


GRID_TRIALS = len([1 for gs in _lattice(SPACE["gamma_strong"]) for gw in _lattice(SPACE["gamma_weak"])
                   if gs < gw]) * len(_lattice(SPACE["omega"]))  # points of SPACE
QUARTER = GRID_TRIALS // 4  # full trials in 25 % of the grid's samples
STRATEGIES = {  # name -> (search section, seeded: does the search seed change what it does)
    "grid": ({"sampler": "grid"}, False),
    # the shipped quickstart's pruning, on this grid: 100 x 100 + 50 x 250 = 90 % of the grid's samples
    "grid + median": ({"sampler": "grid", "pruning": {"fidelities": [100], "pruner": "median"}}, False),
    # rung-synchronous successive halving; a promoted point is measured again from sample 0:
    # 1/3: 100 x 25 + 34 x 50 + 12 x 100 + 4 x 250 = 25.6 %; 1/4: 100 x 25 + 25 x 50 + 7 x 100 + 2 x 250 = 19.8 %
    "grid + halving": ({"sampler": "grid", "pruning": {"fidelities": [25, 50, 100], "pruner": "halving"}}, False),
    "grid + halving 1/4": ({"sampler": "grid", "pruning": {"fidelities": [25, 50, 100], "pruner": "halving",
                                                           "reduction_factor": 4}}, False),
    "random": ({"sampler": "random", "budget": QUARTER}, True),
    "tpe": ({"sampler": "tpe", "budget": QUARTER}, True),
    # a pruned trial stops at 50 or 100 of 250 samples: 1.5x the trials in about the same samples
    "tpe + pruning": ({"sampler": "tpe", "budget": QUARTER * 3 // 2,
                       "pruning": {"fidelities": [50, 100], "pruner": "median"}}, True),
    "multi-objective": ({"sampler": "multi-objective", "budget": QUARTER}, True),
}


def describe(search: dict) -> str:
    """A strategy's settings in suite words (`sampler: tpe, budget: 45, pruning: median @ 100, 200`)."""
    out = [f"{search['sampler']}"]
    if "budget" in search:
        out.append(f"budget {search['budget']}")
    p = search.get("pruning")
    if p:
        extra = {"halving": f" (1/{p.get('reduction_factor', 3)})", "percentile": f" {p.get('percentile', 50):g} %"}
        out.append(f"{p['pruner']}{extra.get(p['pruner'], '')} at {', '.join(map(str, p['fidelities']))}")
    return ", ".join(out)


def run_replays(table: GridTable, names: list[str], seeds: int, log=print) -> dict[str, list[dict]]:
    scores = grid_scores(table, suite_objective())
    results: dict[str, list[dict]] = {}
    for name in names:
        search, seeded = STRATEGIES[name]
        results[name] = []
        for seed in range(seeds if seeded else 1):
            r = replay(table, search, seed, strategy=name)
            results[name].append(score(table, scores, r))
            res = results[name][-1]
            log(f"{name:<16} seed {seed}: {res['trials']:3d} trials, {100 * res['spent']:5.1f} % of the grid's samples, "
                f"best {res['best']:.3f} ({100 * res['gap']:+.1f} %), HV {100 * res['hv']:.1f} % ({r.seconds:.1f}s)")
    return results


def suite_objective() -> str:
    from sgbench.config.loader import load_suite

    with tempfile.TemporaryDirectory() as tmp:
        return load_suite(write_suite(suite_data(), Path(tmp))).suite.search.objective


def spearman(a, b) -> float:
    """Rank correlation (no ties in measured FDs)."""
    ra, rb = (np.argsort(np.argsort(np.asarray(x))) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def result_table(table: GridTable, results: dict[str, list[dict]]) -> str:
    s = grid_scores(table, suite_objective())
    p = table.points[s.optimum_point]
    lines = [
        f"grid optimum: {s.objective} = {s.optimum:.3f} ± {s.optimum_se:.3f} at SG γ=({p['gamma_strong']:g}, "
        f"{p['gamma_weak']:g}) ω={p['omega']:g}; the grid: {len(table.points)} points x {table.full} samples = "
        f"{s.grid_samples} samples; hypervolume ({s.objective} vs GFLOPs, reference point "
        f"({s.reference[0]:.4f} GFLOPs, {s.reference[1]:.3f})) {s.grid_hv:.4f}",
        f"grid points within 2 % of the optimum: {int(np.sum(table.column(s.objective) <= 1.02 * s.optimum))}, "
        f"within its standard error: {int(np.sum(table.column(s.objective) <= s.optimum + s.optimum_se))} "
        f"of {len(table.points)}",
        "rank correlation (Spearman) over the grid of the objective at n samples with it at the full count: "
        + ", ".join(f"n={n}: {spearman(table.column(s.objective, n), table.column(s.objective)):+.2f}"
                    for n in table.sample_counts[:-1]),
        "",
        "| strategy | settings | search seeds | samples spent, % of the grid: mean (max) | best found: mean (worst) "
        "| gap to the optimum: mean (worst) | within 2 % | within 1 SE | goal: ≤ 25 % of the samples and within 2 % or 1 SE "
        "| hypervolume, % of the grid's: mean (min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rs in results.items():
        search, seeded = STRATEGIES[name]
        spent = [r["spent"] for r in rs]
        best = [r["best"] for r in rs]
        gap = [r["gap"] for r in rs]
        hv = [r["hv"] for r in rs]
        n = len(rs)
        count = {k: sum(r[k] for r in rs) for k in ("within_2pct", "within_se")}
        goal = sum(r["hit"] and r["spent"] <= 0.25 for r in rs)
        seeds = str(n) if seeded else "(deterministic)"
        lines.append(f"| {name} | {describe(search)} | {seeds} | {100 * np.mean(spent):.1f} ({100 * max(spent):.1f}) "
                     f"| {np.mean(best):.3f} ({max(best):.3f}) | {100 * np.mean(gap):+.1f} % ({100 * max(gap):+.1f} %) "
                     f"| {count['within_2pct']}/{n} | {count['within_se']}/{n} | {goal}/{n} "
                     f"| {100 * np.mean(hv):.1f} ({100 * min(hv):.1f}) |")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_shard"]:  # one ground-truth process: its share of the points
        j, jobs, part = int(argv[1]), int(argv[2]), Path(argv[3])
        from sgbench.config.loader import load_suite
        from sgbench.search.space import grid_points

        with tempfile.TemporaryDirectory() as tmp:
            n = len(grid_points(load_suite(write_suite(suite_data(), Path(tmp))).suite.search.space))
        measure_points(list(range(j, n, jobs)), part, log=lambda m: print(m, file=sys.stderr, flush=True))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    g = sub.add_parser("grid", help="measure the ground truth table (once; ~1 h of CPU)")
    g.add_argument("--jobs", type=int, default=1, help="single-thread processes (default 1)")
    g.add_argument("--out", type=Path, default=TABLE)
    ap.add_argument("--seeds", type=int, default=10, help="search seeds per seeded strategy (default 10)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated subset of: " + ", ".join(STRATEGIES))
    ap.add_argument("--table", type=Path, default=TABLE, help="the ground truth (default: the shipped table)")
    ap.add_argument("--json", type=Path, help="also write every replay's scores to this file")
    args = ap.parse_args(argv)
    if args.command == "grid":
        ground_truth(args.out, max(1, args.jobs))
        return 0
    names = [n.strip() for n in args.strategies.split(",") if n.strip()]
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        ap.error(f"unknown strategies {unknown}; known: {', '.join(STRATEGIES)}")
    table = GridTable.read(args.table)
    stamp = next((h for h in table.header if h.startswith("# fingerprint:")), "")
    if stamp.split(":", 1)[-1].strip() != fingerprint():
        print(f"warning: {args.table} was measured for another quickstart suite, space or fidelities than the current "
              f"ones (fingerprint {stamp.split(':', 1)[-1].strip() or 'missing'}, now {fingerprint()}); regenerate it: "
              f"{GT_COMMAND}", file=sys.stderr)
    t0 = time.perf_counter()
    results = run_replays(table, names, args.seeds, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    print(result_table(table, results))
    print(f"\n(replayed in {time.perf_counter() - t0:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
