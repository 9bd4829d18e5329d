"""env.json: what produced a run (versions, device, git commit, time), for reproducing it."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import sgbench

# by distribution name; sgbench itself is recorded by its __version__ (the code that ran: PyPI's
# unrelated `sgbench` distribution may be installed too, and a checkout may be no distribution at all)
PACKAGES = ("torch", "torchvision", "numpy", "scipy", "optuna", "fvcore", "torch-fidelity",
            "diffusers", "safetensors", "pyyaml", "pandas", "pillow")


def _version(name: str):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit(cwd=None) -> dict:
    """{'commit', 'dirty'} of the sgbench checkout, or {} outside a git work tree."""
    root = Path(cwd or Path(__file__).resolve().parents[2])
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {}


def device_info(device: str) -> dict:
    import torch

    info = {"device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    if device.startswith("cuda"):
        idx = torch.device(device).index or 0
        info.update(gpu=torch.cuda.get_device_name(idx), cuda=torch.version.cuda,
                    gpu_memory_gib=round(torch.cuda.get_device_properties(idx).total_memory / 2**30, 1))
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def environment(device: str, argv: list[str], overrides=()) -> dict:
    return {
        "time_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(argv),
        "overrides": list(overrides),  # `--set KEY=VALUE`, as given (their values are in suite.yaml)
        "host": socket.gethostname(),
        "rank": int(os.environ.get("RANK", "0")),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {"sgbench": sgbench.__version__, **{p: _version(p) for p in PACKAGES}},
        "git": git_commit(),
        **device_info(device),
    }
