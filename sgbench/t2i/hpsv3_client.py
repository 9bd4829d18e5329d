"""HPSv3 from sgbench: a client that drives `hpsv3_worker.py` in the user's hpsv3 environment,
the HPDv3 benchmark prompts, and the per-category aggregation of paper Table 4.

Score of an image = mu of HPSv3's (mu, sigma). Per category: mean over its images; overall:
mean over the categories present (this reproduces the Overall column of Table 4 from its
category columns to +-0.01 for 5 of the 6 rows we checked); `overall_images` is the mean over
all images.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sgbench.errors import UserError
from sgbench.metrics.benchmarks import HPSV3, HPSV3_CATEGORIES, HPSV3_CATEGORY, hpsv3_member

WORKER = Path(__file__).with_name("hpsv3_worker.py")


def category_key(name: str) -> str:
    """'Natural Scenery' / 'natural_scenery' / 'benchmark_NaturalScenery' -> 'naturalscenery'."""
    name = re.sub(r"^benchmark[_-]?", "", Path(str(name)).stem, flags=re.I)
    return re.sub(r"[^a-z0-9]", "", name.lower())


_CANON = {category_key(c): c for c in HPSV3_CATEGORIES}


def canonical_category(name: str) -> str:
    key = category_key(name)
    if key not in _CANON:
        raise UserError(f"unknown HPSv3 category {name!r}; known: {', '.join(HPSV3_CATEGORIES)}")
    return _CANON[key]


# ----------------------------------------------------------------------------- prompts


def _prompts_from_json(obj, where: str) -> list[str]:
    if isinstance(obj, dict):
        for key in ("prompts", "data", "items"):
            if isinstance(obj.get(key), list):
                return _prompts_from_json(obj[key], where)
        raise UserError(f"{where}: expected a list of prompts")
    if not isinstance(obj, list):
        raise UserError(f"{where}: expected a list of prompts")
    out = []
    for i, item in enumerate(obj):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            text = next((item[k] for k in ("prompt", "caption", "text") if isinstance(item.get(k), str)), None)
            if text is None:
                raise UserError(f"{where}[{i}]: no 'prompt' field")
            out.append(text)
        else:
            raise UserError(f"{where}[{i}]: expected a string or an object with 'prompt'")
    return out


def load_benchmark_prompts(path) -> list[dict]:
    """[{'prompt', 'category'}] from either
    - a directory of HPDv3 `benchmark/benchmark_<Category>.json` files, or
    - a .jsonl file with one {"prompt": ..., "category": ...} per line."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(p.glob("*.json"))
        if not files:
            raise UserError(f"no benchmark_<Category>.json files in {p} (HPDv3's benchmark/ folder)")
        out = []
        for f in files:
            cat = canonical_category(f.name)
            try:
                prompts = _prompts_from_json(json.loads(f.read_text()), f.name)
            except json.JSONDecodeError as e:
                raise UserError(f"{f}: not JSON ({e.msg})") from None
            out += [{"prompt": q, "category": cat} for q in prompts]
        return out
    if not p.is_file():
        raise UserError(f"HPSv3 prompts not found: {p} (set suite.benchmark.prompts to HPDv3's benchmark/ folder or a .jsonl)")
    return [{"prompt": rec["prompt"], "category": canonical_category(rec.get("category", "Others"))}
            for rec in _read_jsonl(p, ("prompt",))]


def _read_jsonl(p: Path, required: Sequence[str]) -> list[dict]:
    """Records of a .jsonl file, each a JSON object with the `required` keys."""
    out = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{p}:{i}: not JSON ({e.msg})") from None
        if not isinstance(rec, dict) or any(not isinstance(rec.get(k), str) for k in required):
            raise UserError(f"{p}:{i}: needs {' and '.join(repr(k) for k in required)} (strings)")
        out.append(rec)
    return out


# ----------------------------------------------------------------------------- aggregation


def aggregate(scores: Sequence[float], categories: Sequence[str]) -> dict:
    """{'overall', 'overall_images', 'categories': {name: mean}, 'counts': {name: n}} (Table 4)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(categories):
        raise UserError(f"{len(scores)} scores but {len(categories)} categories")
    if len(scores) == 0:
        raise UserError("no HPSv3 scores to aggregate")
    cats = [canonical_category(c) for c in categories]
    per = {}
    for name in HPSV3_CATEGORIES:
        sel = [s for s, c in zip(scores, cats) if c == name]
        if sel:
            per[name] = float(np.mean(sel))
    return {
        "overall": float(np.mean(list(per.values()))),
        "overall_images": float(scores.mean()),
        "categories": per,
        "counts": {c: sum(1 for x in cats if x == c) for c in per},
    }


def category_column(name: str) -> str:
    """trials.csv column of a category: hpsv3_<category> (lower case, spaces -> _)."""
    return HPSV3_CATEGORY.key(hpsv3_member(name))


def summary_columns(summary: dict) -> dict:
    """trials.csv columns: hpsv3, hpsv3_<category> (sgbench.metrics.benchmarks)."""
    cols = {HPSV3.key: summary["overall"]}
    cols.update({category_column(name): v for name, v in summary["categories"].items()})
    return cols


def format_table(rows: dict) -> str:
    """Markdown table in the layout of paper Table 4: {model name: summary} -> text."""
    head = "| Model | Overall | " + " | ".join(HPSV3_CATEGORIES) + " |"
    sep = "|---" * (len(HPSV3_CATEGORIES) + 2) + "|"
    lines = [head, sep]
    for name, s in rows.items():
        cells = [f"{s['categories'][c]:.2f}" if c in s["categories"] else "–" for c in HPSV3_CATEGORIES]
        lines.append(f"| {name} | {s['overall']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- client


@dataclass
class HPSv3WorkerConfig:
    python: str  # the hpsv3 environment's interpreter
    base_model: str = ""  # Qwen2-VL-7B-Instruct directory
    checkpoint: str = ""  # HPSv3.safetensors
    config: Optional[str] = None  # HPSv3 YAML (default: the package's)
    device: str = "cpu"
    dtype: str = "auto"  # auto = float32 on CPU, bfloat16 on GPU
    batch_size: int = 4
    scorer: str = "hpsv3"  # "fake" only for protocol tests
    startup_timeout: float = 1800.0

    def check(self) -> None:
        py = Path(self.python).expanduser()
        if not py.is_file() or not os.access(py, os.X_OK):
            raise UserError(f"HPSv3 python not found or not executable: {py} (set --hps-python to the "
                            "python of an environment with `pip install hpsv3`)")
        if self.scorer == "fake":
            return
        base = Path(self.base_model).expanduser()
        if not self.base_model or not (base / "config.json").is_file():
            raise UserError(f"Qwen2-VL base model directory not found: {base} (set --hps-base-model)")
        ck = Path(self.checkpoint).expanduser()
        if not self.checkpoint or not ck.is_file():
            raise UserError(f"HPSv3 checkpoint not found: {ck} (set --hps-checkpoint to HPSv3.safetensors)")
        if self.config and not Path(self.config).expanduser().is_file():
            raise UserError(f"HPSv3 config not found: {self.config} (set --hps-config or leave it out)")
        if self.batch_size < 1:
            raise UserError("HPSv3 batch_size must be >= 1")


class HPSv3Client:
    """Context manager around one worker process: `score(image_paths, prompts) -> mu array`."""

    def __init__(self, cfg: HPSv3WorkerConfig):
        cfg.check()
        self.cfg = cfg
        cmd = [str(Path(cfg.python).expanduser()), str(WORKER), "--device", cfg.device, "--dtype", cfg.dtype,
               "--scorer", cfg.scorer]
        if cfg.scorer != "fake":
            cmd += ["--base-model", str(Path(cfg.base_model).expanduser()),
                    "--checkpoint", str(Path(cfg.checkpoint).expanduser())]
            if cfg.config:
                cmd += ["--config", str(Path(cfg.config).expanduser())]
        self._stderr = tempfile.TemporaryFile(mode="w+")
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1, env=env)
        self._next_id = 0
        hello = self._read(cfg.startup_timeout)
        if hello.get("fatal"):
            self.close()
            hint = ("; hpsv3 1.0.0 also needs matplotlib and tensorboard, which it does not declare"
                    if "ModuleNotFoundError" in hello["fatal"] else "")
            raise UserError(f"HPSv3 worker failed to start: {hello['fatal']} (python: {cfg.python}{hint})")
        if not hello.get("ready") or hello.get("protocol") != 1:
            self.close()
            raise UserError(f"HPSv3 worker spoke an unexpected protocol: {hello}")
        self.info = hello

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().splitlines() if ln.strip()]
        return lines[-1][:300] if lines else ""

    def _read(self, timeout: float) -> dict:
        import select

        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.close()
            raise UserError(f"HPSv3 worker gave no answer within {timeout:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise UserError(f"HPSv3 worker exited (code {code}): {self._stderr_tail()}")
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            self.close()
            raise UserError(f"HPSv3 worker wrote a non-JSON line: {line[:200]!r}") from None

    def score_batch(self, image_paths: Sequence[str], prompts: Sequence[str], timeout: float = 3600.0):
        """-> (mu [n], sigma [n]) for one request."""
        self._next_id += 1
        req = {"id": self._next_id, "images": [str(Path(p).resolve()) for p in image_paths],
               "prompts": list(prompts)}
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise UserError(f"HPSv3 worker is gone: {self._stderr_tail()}") from None
        resp = self._read(timeout)
        if resp.get("id") != req["id"]:
            raise UserError(f"HPSv3 worker answered request {resp.get('id')} instead of {req['id']}")
        if "error" in resp:
            raise UserError(f"HPSv3 worker: {resp['error']}")
        return np.asarray(resp["mu"], dtype=np.float64), np.asarray(resp["sigma"], dtype=np.float64)

    def score(self, image_paths: Sequence[str], prompts: Sequence[str], progress: bool = False) -> np.ndarray:
        if len(image_paths) != len(prompts):
            raise UserError(f"{len(image_paths)} images but {len(prompts)} prompts")
        from sgbench.progress import bar, counted

        bs = self.cfg.batch_size
        starts = range(0, len(image_paths), bs)
        images = bar(len(image_paths), "hpsv3", enabled=progress)  # on a terminal only
        batches = counted(starts, images, lambda s: len(image_paths[s : s + bs]))
        mus = [self.score_batch(image_paths[s : s + bs], prompts[s : s + bs])[0] for s in batches]
        return np.concatenate(mus) if mus else np.zeros(0)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_image_manifest(path) -> list[dict]:
    """A scoring manifest: .jsonl of {"image": path, "prompt": ..., "category": ...}; relative
    image paths are relative to the manifest's folder."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"image manifest not found: {p} (.jsonl with image, prompt, category per line)")
    out = []
    for rec in _read_jsonl(p, ("image", "prompt")):
        img = Path(rec["image"])
        img = img if img.is_absolute() else p.parent / img
        if not img.is_file():
            raise UserError(f"{p}: image not found: {img}")
        out.append({"image": str(img), "prompt": rec["prompt"],
                    "category": canonical_category(rec.get("category", "Others"))})
    if not out:
        raise UserError(f"image manifest is empty: {p}")
    return out

