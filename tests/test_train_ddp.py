"""Two gloo processes on CPU through torchrun (~12 s): training runs, checkpoints/export written once."""

import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_torchrun_two_gloo_processes(tmp_path):
    raw = {
        "task": "class_image",
        "data": {"name": "shapes", "n_train": 64, "n_heldout": 8},
        "model": {"patch_size": 8, "hidden_size": 32, "depth": 2, "num_heads": 2, "routes": ["0-0"]},
        "objective": {"route_rate": 0.5},
        "train": {"steps": 4, "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9, "log_every": 1,
                  "ckpt_every": 2, "keep_every": 2, "device": "cpu", "threads": 1},
        "output": {"dir": str(tmp_path / "run"), "export": str(tmp_path / "m.safetensors")},
    }
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sgbench.cli", "train", str(cfg), "--no-progress"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    ck = torch.load(tmp_path / "run/checkpoints/latest.pt", weights_only=False)
    assert ck["step"] == 4
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").glob("step_*.pt")) == ["step_0000002.pt", "step_0000004.pt"]
    assert (tmp_path / "m.safetensors").is_file()
    assert r.stdout.count('"world_size": 2') == 1  # only rank 0 reports
