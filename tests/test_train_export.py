"""Training exports go under the output directory (so --output-dir moves them), never into the
installed package, and never replace a file without --force."""

import hashlib
from pathlib import Path

import yaml

from sgbench.cli import main

ASSET = Path(__import__("sgbench").__file__).parent / "assets" / "quickstart" / "model.safetensors"


def config(tmp_path) -> Path:
    raw = {
        "task": "class_image",
        "data": {"name": "shapes", "n_train": 16, "n_heldout": 8},
        "model": {"patch_size": 8, "hidden_size": 16, "depth": 1, "num_heads": 2, "routes": ["0-0"]},
        "train": {"steps": 1, "batch_size": 8, "log_every": 1, "ckpt_every": 1, "keep_every": 1, "precision": "fp32"},
        # what suites/train_quickstart.yaml said before: a path into the package, relative to the cwd
        "output": {"dir": str(tmp_path / "default"), "export": "sgbench/assets/quickstart/model.safetensors"},
    }
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_exports_follow_the_output_dir_and_are_never_replaced_silently(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(Path(__import__("sgbench").__file__).parents[1])  # the checkout, as in README
    shipped = hashlib.sha256(ASSET.read_bytes()).hexdigest()
    cfg = config(tmp_path)
    try_dir = tmp_path / "try"
    assert main(["train", str(cfg), "--output-dir", str(try_dir), "--no-progress"]) == 0
    export = try_dir / "sgbench" / "assets" / "quickstart" / "model.safetensors"  # under --output-dir
    assert export.is_file()
    assert hashlib.sha256(ASSET.read_bytes()).hexdigest() == shipped  # the shipped model is untouched
    before = export.read_bytes()
    capsys.readouterr()
    assert main(["train", str(cfg), "--output-dir", str(try_dir), "--no-progress", "--no-resume"]) == 2
    assert "already exists" in capsys.readouterr().err and export.read_bytes() == before
    assert main(["train", str(cfg), "--output-dir", str(try_dir), "--no-progress", "--no-resume", "--force"]) == 0
    other = tmp_path / "chosen.safetensors"
    assert main(["train", str(cfg), "--output-dir", str(try_dir), "--export", str(other), "--no-progress"]) == 0
    assert other.is_file()
