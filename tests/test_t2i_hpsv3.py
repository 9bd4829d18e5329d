"""HPSv3 worker protocol (fake scorer in a real subprocess), prompts and Table 4 aggregation."""

import io
import json
import sys

import numpy as np
import pytest
from PIL import Image

from sgbench.errors import UserError
from sgbench.t2i.hpsv3_client import (
    HPSV3_CATEGORIES,
    HPSv3Client,
    HPSv3WorkerConfig,
    aggregate,
    canonical_category,
    format_table,
    load_benchmark_prompts,
    read_image_manifest,
    summary_columns,
)
from sgbench.t2i.hpsv3_worker import FakeScorer, serve


def _images(tmp_path, values):
    paths = []
    for i, v in enumerate(values):
        p = tmp_path / f"{i}.png"
        Image.fromarray(np.full((4, 4, 3), v, np.uint8)).save(p)
        paths.append(str(p))
    return paths


def test_aggregate_reproduces_table4_layout():
    kolors = [11.79, 10.47, 9.87, 10.82, 10.60, 9.89, 10.68, 10.93, 10.50, 10.63, 11.06, 9.51]
    s = aggregate(kolors, HPSV3_CATEGORIES)
    assert s["overall"] == pytest.approx(10.5625)  # Table 4 prints 10.55 for Kolors
    scores = [1.0, 3.0, 5.0]
    s = aggregate(scores, ["Food", "food", "natural_scenery"])
    assert s["categories"] == {"Natural Scenery": 5.0, "Food": 2.0}
    assert s["overall"] == 3.5 and s["overall_images"] == 3.0 and s["counts"] == {"Natural Scenery": 1, "Food": 2}
    assert summary_columns(s) == {"hpsv3": 3.5, "hpsv3_natural_scenery": 5.0, "hpsv3_food": 2.0}
    table = format_table({"SG": s})
    assert table.splitlines()[0].startswith("| Model | Overall | Characters | Arts")
    assert "| SG | 3.50 | – |" in table and table.count("|") == 3 * 15
    with pytest.raises(UserError, match="unknown HPSv3 category"):
        canonical_category("Cars")


def test_benchmark_prompts_from_hpdv3_folder_and_jsonl(tmp_path):
    d = tmp_path / "benchmark"
    d.mkdir()
    (d / "benchmark_Natural Scenery.json").write_text(json.dumps(["a lake", {"prompt": "a hill"}]))
    (d / "benchmark_Food.json").write_text(json.dumps({"prompts": [{"caption": "a cake"}]}))
    got = load_benchmark_prompts(d)
    assert got == [{"prompt": "a cake", "category": "Food"}, {"prompt": "a lake", "category": "Natural Scenery"},
                   {"prompt": "a hill", "category": "Natural Scenery"}]
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "x", "category": "science"}\n\n{"prompt": "y"}\n')
    assert [r["category"] for r in load_benchmark_prompts(f)] == ["Science", "Others"]
    with pytest.raises(UserError, match="benchmark.prompts"):
        load_benchmark_prompts(tmp_path / "none.jsonl")


def test_serve_protocol_in_process(tmp_path):
    paths = _images(tmp_path, [0, 51, 255])
    reqs = [{"id": 1, "images": paths, "prompts": ["a", "bb", "ccc"]},
            {"id": 2, "images": [str(tmp_path / "missing.png")], "prompts": ["x"]},
            "not json",
            {"id": 3, "images": paths[:1], "prompts": []},
            {"cmd": "quit"},
            {"id": 4, "images": [], "prompts": []}]
    inp = io.StringIO("\n".join(r if isinstance(r, str) else json.dumps(r) for r in reqs) + "\n")
    out = io.StringIO()
    serve(FakeScorer(), inp, out)
    lines = [json.loads(x) for x in out.getvalue().splitlines()]
    assert lines[0] == {"ready": True, "protocol": 1, "device": "cpu", "dtype": "float32"}
    assert lines[1] == {"id": 1, "mu": [0.0, 2.0, 10.0], "sigma": [0.01, 0.02, 0.03]}
    assert lines[2]["id"] == 2 and "image not found" in lines[2]["error"]
    assert lines[3]["error"].startswith("bad request")
    assert lines[4] == {"id": 3, "error": "ValueError: 1 images but 0 prompts"}
    assert len(lines) == 5  # quit stops before request 4


def test_client_drives_a_real_worker_process(tmp_path):
    paths = _images(tmp_path, [0, 51, 102, 255, 204])
    cfg = HPSv3WorkerConfig(python=sys.executable, scorer="fake", batch_size=2)
    with HPSv3Client(cfg) as client:
        mu = client.score(paths, ["p"] * 5)
        np.testing.assert_allclose(mu, [0.0, 2.0, 4.0, 10.0, 8.0])
        with pytest.raises(UserError, match="image not found"):
            client.score([str(tmp_path / "nope.png")], ["p"])
        assert client.score(paths[:1], ["p"]).tolist() == [0.0]  # still serving after an error
    assert client.proc.returncode == 0
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"image": f"{i}.png", "prompt": "p", "category": "Arts"})
                                  for i in range(2)))
    assert [r["image"] for r in read_image_manifest(manifest)] == paths[:2]


def test_worker_startup_failures_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="--hps-python"):
        HPSv3Client(HPSv3WorkerConfig(python=str(tmp_path / "python")))
    base = tmp_path / "qwen"
    base.mkdir()
    with pytest.raises(UserError, match="--hps-base-model"):
        HPSv3Client(HPSv3WorkerConfig(python=sys.executable, base_model=str(tmp_path / "none")))
    (base / "config.json").write_text("{}")
    with pytest.raises(UserError, match="--hps-checkpoint"):
        HPSv3Client(HPSv3WorkerConfig(python=sys.executable, base_model=str(base), checkpoint=str(tmp_path / "x")))
    ckpt = tmp_path / "HPSv3.safetensors"
    ckpt.write_bytes(b"")
    # sgbench's own env has no hpsv3: the worker reports a fatal line and the client a UserError
    with pytest.raises(UserError, match="failed to start: ModuleNotFoundError.*matplotlib and tensorboard"):
        HPSv3Client(HPSv3WorkerConfig(python=sys.executable, base_model=str(base), checkpoint=str(ckpt)))


FAKE_HPSV3 = '''
import yaml, torch

class HPSv3RewardInferencer:
    seen = []

    def __init__(self, config_path=None, checkpoint_path=None, device="cuda", differentiable=False):
        with open(config_path) as f:
            HPSv3RewardInferencer.seen.append((yaml.safe_load(f), checkpoint_path, device))

    def reward(self, prompts, image_paths):
        HPSv3RewardInferencer.grad_enabled = torch.is_grad_enabled()  # the real one has no no_grad
        return torch.tensor([[float(len(p)), 0.5] for p in prompts], dtype=torch.bfloat16)
'''


def test_hpsv3_adapter_rewrites_config_and_reads_mu(tmp_path, monkeypatch):
    """HPSv3Scorer against a stand-in `hpsv3` package with HPSv3's API (the real one is not
    installable in sgbench's environment)."""
    pkg = tmp_path / "site" / "hpsv3"
    (pkg / "config").mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_HPSV3)
    (pkg / "config" / "HPSv3_7B.yaml").write_text(
        'model_name_or_path: "/mizzenai/models/Qwen2-VL-7B-Instruct"\nbf16: True\ntorch_dtype: "bfloat16"\n'
        'output_dim: 2\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "hpsv3", raising=False)
    from sgbench.t2i.hpsv3_worker import HPSv3Scorer

    paths = _images(tmp_path, [0, 0])
    scorer = HPSv3Scorer("/models/qwen", "/models/HPSv3.safetensors", device="cpu")
    assert scorer(paths, ["abc", "abcdef"]) == [(3.0, 0.5), (6.0, 0.5)]
    import hpsv3

    assert hpsv3.HPSv3RewardInferencer.grad_enabled is False

    cfg, ckpt, device = hpsv3.HPSv3RewardInferencer.seen[-1]
    assert cfg["model_name_or_path"] == "/models/qwen" and cfg["torch_dtype"] == "float32" and not cfg["bf16"]
    assert cfg["output_dim"] == 2 and ckpt == "/models/HPSv3.safetensors" and device == "cpu"
    HPSv3Scorer("/models/qwen", "/x", device="cuda")
    assert hpsv3.HPSv3RewardInferencer.seen[-1][0]["torch_dtype"] == "bfloat16"
    monkeypatch.delitem(sys.modules, "hpsv3")
