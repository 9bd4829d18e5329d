"""sgbench's HPSv3 client + worker against the REAL `hpsv3` package (tiny random Qwen2-VL, CPU).

Needs an environment with hpsv3 installed (it pins transformers==4.45.2, so not sgbench's):
    SGBENCH_HPSV3_PYTHON=/tmp/hpsv3-env/bin/python .venv/bin/python -m pytest -q -m slow tests/test_t2i_hpsv3_real.py
Skipped unless $SGBENCH_HPSV3_PYTHON is a python that can `import hpsv3`.
"""

import importlib.util
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "hpsv3_tiny_check.py"


def _hps_python():
    py = os.environ.get("SGBENCH_HPSV3_PYTHON")
    if not py:
        pytest.skip("set SGBENCH_HPSV3_PYTHON to the python of an environment with hpsv3 installed")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    try:
        r = subprocess.run([py, "-c", "import hpsv3"], capture_output=True, text=True, env=env, timeout=300)
    except OSError as e:
        pytest.skip(f"SGBENCH_HPSV3_PYTHON={py} cannot run: {e}")
    if r.returncode != 0:
        pytest.skip(f"SGBENCH_HPSV3_PYTHON={py} cannot import hpsv3: {r.stderr.strip().splitlines()[-1:]}")
    return py


@pytest.mark.slow
def test_real_hpsv3_package_through_sgbench_worker(tmp_path):
    py = _hps_python()
    spec = importlib.util.spec_from_file_location("hpsv3_tiny_check", SCRIPT)
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    res = check.run_check(py, tmp_path)  # asserts finite, one per image, deterministic, batch-invariant
    assert res["worker"] == {"ready": True, "protocol": 1, "device": "cpu", "dtype": "float32"}
    scores = res["scores"]
    assert len(scores) == len(check.PROMPTS) and np.isfinite(scores).all()
    cats = [c for _, c in check.PROMPTS]
    assert res["summary"]["categories"] == {c: s for c, s in zip(cats, scores)}
    assert res["summary"]["overall"] == pytest.approx(np.mean(scores))
