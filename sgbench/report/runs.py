"""Read a run directory (docs/design.md, "run directory") into a normalised table.

`load_run` validates once at the edge: afterwards setting columns have one spelling
(floats rounded, NaN -> None, strings stripped), metric columns are numeric and `status` is
lower case, so tables, figures and the regression gate can trust the frame.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sgbench.errors import UserError
from sgbench.report.metrics import COST_COLUMNS, SE_SUFFIX, SETTING_COLUMNS, is_metric

REQUIRED = ("method", "gamma_strong", "gamma_weak", "omega")
# Optional columns and the value a missing one takes.
DEFAULTS = {"role": "search", "schedule": "", "n_samples": None, "seed": 0, "status": "complete"}
STATUSES = ("complete", "pruned", "failed")


@dataclass
class Run:
    """One loaded run directory. `trials` holds every row; `problem` says why nothing
    can be reported (no trials.csv, no rows, no completed trial) or is None."""

    name: str
    path: Path
    trials: pd.DataFrame
    suite_text: str = ""
    suite: object = None
    env: dict = field(default_factory=dict)
    problem: str | None = None

    @property
    def complete(self) -> pd.DataFrame:
        return self.trials[self.trials["status"] == "complete"]

    @property
    def metrics(self) -> list[str]:
        from sgbench.report.metrics import metric_order

        done = self.complete
        return metric_order([c for c in done.columns if is_metric(c) and done[c].notna().any()])

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    def status_counts(self) -> dict[str, int]:
        counts = self.trials["status"].value_counts()
        return {s: int(counts.get(s, 0)) for s in STATUSES if counts.get(s, 0)}


def resolve_run_dir(arg: str | Path, results_root: str | Path = "results") -> Path:
    """A run given as a path, or by name under `results_root` (exact, then unique prefix)."""
    p = Path(arg).expanduser()
    if p.is_dir():
        return p
    root = Path(results_root)
    if not p.is_absolute() and len(p.parts) == 1 and root.is_dir():
        exact = root / p
        if exact.is_dir():
            return exact
        matches = sorted(d for d in root.iterdir() if d.is_dir() and d.name.startswith(str(p)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(d.name for d in matches[:5])
            raise UserError(f"run name '{p}' is ambiguous under {root}/: {names}")
    raise UserError(f"run directory not found: {p} (give a path or a run name under {root}/)")


def _norm_gamma(v):
    """A sparsity rate as a rounded float, a schedule string ('cosine:0.6:0') as is."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    try:
        return round(float(v), 6)
    except (TypeError, ValueError):
        s = str(v).strip()
        return s or None


def _norm_float(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else round(f, 6)


def _norm_int(v):
    f = _norm_float(v)
    return int(f) if f is not None and f == int(f) else f


def _norm_str(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v).strip()


def normalise_trials(df: pd.DataFrame, where: str) -> pd.DataFrame:
    """Validate and normalise a raw trials table (see module docstring)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"{where} lacks required column(s): {', '.join(missing)}")
    df = df.copy()
    for col, default in DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
    if "trial_id" not in df.columns:
        df["trial_id"] = [str(i) for i in range(len(df))]
    out = pd.DataFrame(index=df.index)
    out["trial_id"] = [_norm_str(v) for v in df["trial_id"]]
    out["role"] = [_norm_str(v).lower() or "search" for v in df["role"]]
    out["method"] = [_norm_str(v).lower() for v in df["method"]]
    out["gamma_strong"] = pd.Series([_norm_gamma(v) for v in df["gamma_strong"]], index=df.index, dtype=object)
    out["gamma_weak"] = pd.Series([_norm_gamma(v) for v in df["gamma_weak"]], index=df.index, dtype=object)
    out["omega"] = pd.Series([_norm_float(v) for v in df["omega"]], index=df.index, dtype=object)
    out["schedule"] = [_norm_str(v) for v in df["schedule"]]
    out["n_samples"] = pd.Series([_norm_int(v) for v in df["n_samples"]], index=df.index, dtype=object)
    out["seed"] = pd.Series([_norm_int(v) for v in df["seed"]], index=df.index, dtype=object)
    status = [_norm_str(v).lower() or "complete" for v in df["status"]]
    bad = sorted({s for s in status if s not in STATUSES})
    if bad:
        raise UserError(f"{where}: unknown status {bad[0]!r} (expected one of {', '.join(STATUSES)})")
    out["status"] = status
    if "error" in df.columns:  # a failed trial's first error line (sgbench run writes it)
        out["error"] = [_norm_str(v) for v in df["error"]]
    from sgbench.report.sweep import normalise_columns

    normalise_columns(df, out)  # a checkpoint sweep's step / checkpoint columns
    if (out["method"] == "").any():
        raise UserError(f"{where}: empty 'method' in row {int((out['method'] == '').values.argmax()) + 2}")
    numeric = [c for c in df.columns if is_metric(c) or c in COST_COLUMNS or
               (c.endswith(SE_SUFFIX) and is_metric(c[: -len(SE_SUFFIX)]))]
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        junk = values.isna() & df[col].notna() & (df[col].astype(str).str.strip() != "")
        if junk.any():
            row = int(junk.values.argmax()) + 2  # 1-based, after the header line
            raise UserError(f"{where}: non-numeric {col}={df[col].iloc[row - 2]!r} in line {row}")
        out[col] = values.astype(float)
    return out.reset_index(drop=True)


def load_run(path: str | Path) -> Run:
    """Load results/<run>/: trials.csv (may be absent or empty), suite.yaml, env.json."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise UserError(f"run directory not found: {path}")
    suite_text, suite, env = "", None, {}
    if (path / "suite.yaml").is_file():
        suite_text = (path / "suite.yaml").read_text(errors="replace")
        try:
            import yaml

            suite = yaml.safe_load(suite_text)
        except Exception:  # a broken snapshot should not stop a report; it is shown verbatim
            suite = None
    if (path / "env.json").is_file():
        try:
            env = json.loads((path / "env.json").read_text(errors="replace"))
        except json.JSONDecodeError:
            env = {}
        env = env if isinstance(env, dict) else {}
    empty = pd.DataFrame(columns=["trial_id", "role", *SETTING_COLUMNS, "seed", "status"])
    trials_path = path / "trials.csv"
    run = Run(name=path.resolve().name, path=path, trials=empty, suite_text=suite_text,
              suite=suite, env=env)
    if not trials_path.is_file():
        run.problem = "the run has no trials.csv (it finished no trial)"
        return run
    try:
        raw = pd.read_csv(trials_path, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raw = pd.DataFrame()
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise UserError(f"cannot parse {trials_path}: {str(e).splitlines()[0]}") from None
    if raw.empty:
        run.problem = "trials.csv has no trials"
        return run
    run.trials = normalise_trials(raw, str(trials_path))
    if run.complete.empty:
        counts = ", ".join(f"{n} {s}" for s, n in run.status_counts().items())
        run.problem = f"no trial completed ({counts})"
    return run


def train_sparsity(run: Run) -> str:
    """The train-time sparsity (routing/masking) if the suite names one, else ''."""
    def walk(node, depth=0):
        if depth > 4:
            return ""
        if isinstance(node, dict):
            for key in ("train_sparsity", "sparsity"):
                v = node.get(key)
                if isinstance(v, str) and v.strip():
                    return v.strip()
            for v in node.values():
                found = walk(v, depth + 1)
                if found:
                    return found
        return ""

    return walk(run.suite)


def find_prompts(node, depth: int = 0) -> list[str]:
    """Prompts named in a suite snapshot (any 'prompts' list of strings), for display."""
    if depth > 5:
        return []
    if isinstance(node, dict):
        v = node.get("prompts")
        if isinstance(v, list) and all(isinstance(p, str) for p in v):
            return list(v)
        for child in node.values():
            found = find_prompts(child, depth + 1)
            if found:
                return found
    elif isinstance(node, list):
        for child in node:
            found = find_prompts(child, depth + 1)
            if found:
                return found
    return []


def run_facts(run: Run) -> dict[str, str]:
    """A few env.json facts worth a line: device, commit, start time."""
    facts = {}
    for key, value in run.env.items():
        k = str(key).lower()
        if any(w in k for w in ("device", "commit", "start", "gpu", "torch")) and not isinstance(value, (dict, list)):
            facts[str(key)] = str(value)
    return facts


def status_line(run: Run) -> str:
    counts = run.status_counts()
    total = sum(counts.values())
    return f"{total} trials (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")" if total else "0 trials"
