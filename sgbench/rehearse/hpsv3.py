"""HPSv3 stand-ins: HPDv3's benchmark prompts folder, and a tiny reward model (random Qwen2-VL base
model directory + the HPSv3 checkpoint the real `hpsv3` package builds from it), made by
`hpsv3_tiny.py` in the HPSv3 environment. The environment itself cannot be stood in: a missing
`hps_python` is replaced only by one the user named in $SGBENCH_HPSV3_PYTHON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from sgbench.errors import UserError

BUILDER = Path(__file__).with_name("hpsv3_tiny.py")
ENV_VAR = "SGBENCH_HPSV3_PYTHON"
PROMPTS = {  # one prompt per HPDv3 category
    "Characters": "a portrait of an old sailor with a white beard", "Arts": "an abstract oil painting of waves",
    "Design": "a minimalist poster of a mountain", "Architecture": "a glass skyscraper at dusk",
    "Animals": "a red fox sitting in the snow", "Natural Scenery": "a misty lake surrounded by pine trees",
    "Transportation": "an old steam locomotive crossing a bridge", "Products": "a silver watch on a marble table",
    "Others": "a paper boat on a puddle", "Plants": "a sunflower field under a blue sky",
    "Food": "a bowl of ramen with a soft boiled egg", "Science": "a model of a DNA double helix",
}


def write_prompts(directory) -> Path:
    """HPDv3's benchmark/ layout: benchmark_<Category>.json, each a list of prompts."""
    directory = Path(directory)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for category, prompt in PROMPTS.items():
        (tmp / f"benchmark_{category.replace(' ', '')}.json").write_text(json.dumps([prompt]))
    os.replace(tmp, directory)
    return directory


def env_python() -> Optional[Path]:
    """The HPSv3 environment named by $SGBENCH_HPSV3_PYTHON, if it is an executable file."""
    py = os.environ.get(ENV_VAR)
    if py and Path(py).expanduser().is_file() and os.access(Path(py).expanduser(), os.X_OK):
        return Path(py).expanduser()
    return None


def build_tiny_hpsv3(hps_python, out_dir) -> dict:
    """Run `hpsv3_tiny.py` with the HPSv3 environment's python; {"base_model", "checkpoint", ...}."""
    out_dir = Path(out_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        r = subprocess.run([str(hps_python), str(BUILDER), str(out_dir)], capture_output=True, text=True, env=env,
                           timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UserError(f"cannot run the HPSv3 environment's python {hps_python}: {e}") from None
    if r.returncode != 0:
        tail = " ".join((r.stderr.strip().splitlines() or ["no output"])[-1:])
        raise UserError(f"building the tiny HPSv3 model with {hps_python} failed: {tail}")
    return json.loads(r.stdout.strip().splitlines()[-1])
