"""Sharded .npz writing: byte-reproducible files, resume after a kill, torchrun == single process,
and the `sgbench sample` command end to end."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from sgbench.cli import main as cli
from sgbench.errors import UserError
from sgbench.sampling.npz import Streamed, write_npz
from sgbench.sampling.seeding import labels_for
from sgbench.sampling.shards import MANIFEST, run_sharded, shard_dir, shard_path

REPO = Path(__file__).resolve().parents[1]


def fake_images(indices):
    idx = np.asarray(list(indices), dtype=np.int64)
    return (idx[:, None, None, None] * 7 + np.arange(2 * 2 * 3).reshape(1, 2, 2, 3)).astype(np.uint8)


class Producer:
    """Stands in for generate(): deterministic images per index; can die after `die_after` shards."""

    def __init__(self, die_after=None):
        self.ranges, self.die_after = [], die_after

    def __call__(self, indices):
        if self.die_after is not None and len(self.ranges) == self.die_after:
            raise KeyboardInterrupt
        self.ranges.append((indices.start, indices.stop))
        idx = np.arange(indices.start, indices.stop)
        yield idx, fake_images(idx), idx % 3


MANIFEST_A = {"seed": 0, "guidance": "sg"}


def test_npz_is_loadable_and_byte_reproducible(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 2, 2, 3)
    arrays = lambda: {"arr_0": Streamed(np.uint8, (4, 2, 2, 3), iter([a, a + 1])), "labels": np.array([1, 2, 3, 4])}
    write_npz(tmp_path / "x.npz", arrays())
    write_npz(tmp_path / "y.npz", arrays())
    assert (tmp_path / "x.npz").read_bytes() == (tmp_path / "y.npz").read_bytes()
    with np.load(tmp_path / "x.npz") as z:
        assert z.files == ["arr_0", "labels"]
        assert np.array_equal(z["arr_0"], np.concatenate([a, a + 1]))
    with pytest.raises(ValueError, match="header promises"):
        write_npz(tmp_path / "bad.npz", {"arr_0": Streamed(np.uint8, (5, 2, 2, 3), iter([a]))})
    assert not (tmp_path / "bad.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz", "y.npz"]  # no temporary left


def test_run_sharded_merges_in_index_order(tmp_path):
    out = tmp_path / "s.npz"
    prod = Producer()
    run_sharded(prod, out, num_samples=7, batch_size=3, manifest=MANIFEST_A, log=lambda m: None)
    assert prod.ranges == [(0, 3), (3, 6), (6, 7)]
    with np.load(out) as z:
        assert np.array_equal(z["arr_0"], fake_images(range(7)))
        assert z.files == ["arr_0", "arr_1"]  # ADM's layout: images, labels
        assert z["arr_1"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert not shard_dir(out).exists()


def test_killed_run_resumes_without_losing_shards(tmp_path, monkeypatch):
    ref = tmp_path / "ref.npz"
    run_sharded(Producer(), ref, 10, 2, MANIFEST_A, log=lambda m: None)

    out = tmp_path / "s.npz"
    with pytest.raises(KeyboardInterrupt):
        run_sharded(Producer(die_after=2), out, 10, 2, MANIFEST_A, log=lambda m: None)
    sdir = shard_dir(out)
    finished = sorted(p.name for p in sdir.glob("*.npz"))
    assert finished == [shard_path(sdir, 0, 2).name, shard_path(sdir, 2, 4).name]
    assert not out.exists()  # never a partial file under the final name
    # what a kill during a write leaves behind: hidden temporaries of a shard and of the merge
    (sdir / f".{shard_path(sdir, 4, 6).name}.x1y2.tmp").write_bytes(b"partial")
    (tmp_path / ".s.npz.k3j4.tmp").write_bytes(b"partial")
    stamps = {p.name: p.stat().st_mtime_ns for p in sdir.glob("*.npz")}

    logs = []
    resumed = Producer()
    orig_unlink = Path.unlink

    def watch_unlink(self, *a, **k):  # finished shards must survive until the merge has read them
        if self.suffix == ".npz" and self.parent == sdir:
            assert self.stat().st_mtime_ns == stamps.get(self.name, self.stat().st_mtime_ns)
        return orig_unlink(self, *a, **k)

    monkeypatch.setattr(Path, "unlink", watch_unlink)
    run_sharded(resumed, out, 10, 2, MANIFEST_A, log=logs.append)
    monkeypatch.undo()
    assert resumed.ranges == [(4, 6), (6, 8), (8, 10)]  # finished shards were not regenerated
    assert out.read_bytes() == ref.read_bytes()
    assert any("resuming: 2 of 5" in m for m in logs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npz", "s.npz"]  # no temporaries left


def test_resume_with_other_settings_is_refused(tmp_path):
    out = tmp_path / "s.npz"
    with pytest.raises(KeyboardInterrupt):
        run_sharded(Producer(die_after=1), out, 6, 2, MANIFEST_A, log=lambda m: None)
    assert (shard_dir(out) / MANIFEST).is_file()
    with pytest.raises(UserError, match="seed differ"):
        run_sharded(Producer(), out, 6, 2, {**MANIFEST_A, "seed": 1}, log=lambda m: None)


# ---- the command ----------------------------------------------------------------------------


def save_tiny_model(path, in_channels=3, input_size=8, seed=0):
    from sgbench.models.dit import DiT, DiTConfig
    from sgbench.models.loading import save_sgbench_safetensors

    torch.manual_seed(seed)
    model = DiT(DiTConfig(input_size=input_size, patch_size=2, in_channels=in_channels, hidden_size=32, depth=4,
                          num_heads=2, num_classes=5, routes=("1-2",), learn_sigma=False))
    for p in model.parameters():
        nn.init.normal_(p, std=0.05)
    save_sgbench_safetensors(path, model, "velocity")
    return path


SG_ARGS = ["--guidance", "sg", "--omega", "2", "--gamma-strong", "0.25", "--gamma-weak", "0.75",
           "--num-samples", "5", "--batch-size", "2", "--steps", "3", "--seed", "3"]


def test_sample_command_writes_adm_npz(tmp_path, capsys):
    ck = save_tiny_model(tmp_path / "m.safetensors")
    out = tmp_path / "s.npz"
    assert cli(["sample", "--checkpoint", str(ck), *SG_ARGS, "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"{out}\n"  # stdout: the file written, for scripts; progress on stderr
    with np.load(out) as z:
        assert z["arr_0"].shape == (5, 8, 8, 3) and z["arr_0"].dtype == np.uint8
        assert z.files == ["arr_0", "arr_1"] and z["arr_1"].dtype == np.int64
        assert z["arr_1"].tolist() == labels_for(range(5), 5, seed=3).tolist()  # default: random
        assert z["arr_0"].std() > 10
    # an existing output is never replaced silently
    assert cli(["sample", "--checkpoint", str(ck), *SG_ARGS, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_sample_command_decodes_latents_with_a_vae(tmp_path):
    from test_sampling_decode import tiny_vae

    ck = save_tiny_model(tmp_path / "m.safetensors", in_channels=4, input_size=4)
    tiny_vae(tmp_path / "vae")
    out = tmp_path / "s.npz"
    args = ["sample", "--checkpoint", str(ck), "--guidance", "cfg", "--omega", "1.5", "--num-samples", "3",
            "--batch-size", "2", "--steps", "2", "--out", str(out)]
    assert cli(args[:-2] + ["--out", str(tmp_path / "no.npz")]) == 2  # 4 channels without --vae
    assert cli(args + ["--vae", str(tmp_path / "vae")]) == 0
    with np.load(out) as z:
        assert z["arr_0"].shape == (3, 8, 8, 3)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--guidance", "xfg"], "argument --guidance: invalid choice: 'xfg'"),
        (["--guidance", "sg", "--omega", "2", "--gamma-strong", "0.9", "--gamma-weak", "0.5"], "gamma_strong < gamma_weak"),
        (["--guidance", "ag", "--omega", "2"], "--weak-checkpoint"),
        (["--guidance", "cfg", "--omega", "-1"], "--omega: must be >= 0"),
        (["--guidance", "cfg", "--omega", "50"], "--omega: must be <= 20"),  # the suites' bound, now the CLI's
        (["--guidance", "cfg"], "--omega: required for guidance cfg"),
        (["--guidance", "cfg", "--omega", "2", "--interval", "0.5,0.5"], "--interval: must satisfy 0 <= t_lo < t_hi"),
        (["--guidance", "cfg", "--omega", "2", "--gamma-weak", "0.5"], "--gamma-weak: applies only to sg"),
        (["--solver", "rk4"], "argument --solver: invalid choice: 'rk4'"),
        (["--labels", "odd"], "argument --labels: invalid choice: 'odd'"),
        (["--num-samples", "0"], "--num-samples: must be >= 1"),
        (["--preset", "sg_fid"], "--weak-checkpoint"),
        (["--guidance", "sg", "--omega", "2", "--gamma-strong", "linear:0:0.8", "--gamma-weak", "linear:0.8:0",
          "--steps", "4"], "at step 2 of 4"),
    ],
)
def test_sample_command_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, message):
    ck = save_tiny_model(tmp_path / "m.safetensors")
    args = ["sample", "--checkpoint", str(ck), "--num-samples", "2", "--steps", "1", "--out", str(tmp_path / "o.npz")]
    assert cli(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


def test_sample_command_sg_fid_uses_the_weak_checkpoint(tmp_path):
    main = save_tiny_model(tmp_path / "main.safetensors", seed=0)
    weak = save_tiny_model(tmp_path / "weak.safetensors", seed=1)
    common = ["--preset", "sg_fid", "--num-samples", "2", "--steps", "3", "--batch-size", "2"]
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert cli(["sample", "--checkpoint", str(main), "--weak-checkpoint", str(weak), *common, "--out", str(a)]) == 0
    assert cli(["sample", "--checkpoint", str(main), "--weak-checkpoint", str(main), *common, "--out", str(b)]) == 0
    with np.load(a) as za, np.load(b) as zb:
        assert za["arr_0"].shape == (2, 8, 8, 3)
        assert not np.array_equal(za["arr_0"], zb["arr_0"])  # the weak network matters


def test_missing_checkpoint_is_exit_2(tmp_path, capsys):
    assert cli(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--num-samples", "1", "--out", str(tmp_path / "o.npz")]) == 2
    assert "not found" in capsys.readouterr().err


def test_torchrun_two_workers_match_one_process_byte_for_byte(tmp_path):
    ck = save_tiny_model(tmp_path / "m.safetensors")
    single, multi = tmp_path / "one.npz", tmp_path / "two.npz"
    assert cli(["sample", "--checkpoint", str(ck), *SG_ARGS, "--out", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sgbench.cli", "sample", "--checkpoint", str(ck), *SG_ARGS, "--device", "cpu", "--out", str(multi)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert multi.read_bytes() == single.read_bytes()
    assert not shard_dir(multi).exists()


def test_sample_then_evaluate_keeps_class_accuracy(tmp_path, capsys):
    """`sgbench sample` writes ADM's arr_1 labels, which `sgbench evaluate` reads for class accuracy;
    files of older versions (labels under 'labels') still give it."""
    import json

    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, load_classifier, save_classifier

    ck = save_tiny_model(tmp_path / "m.safetensors", input_size=32)
    torch.manual_seed(0)
    save_classifier(ShapeClassifier(ClassifierConfig(width=4, feature_dim=8)).eval(), tmp_path / "clf.safetensors")
    out = tmp_path / "s.npz"
    assert cli(["sample", "--checkpoint", str(ck), "--num-samples", "6", "--batch-size", "3", "--steps", "2",
                "--out", str(out)]) == 0
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8))
    capsys.readouterr()

    def class_acc(path):
        assert cli(["evaluate", str(path), "--ref", str(tmp_path / "ref.npz"), "--extractor", "classifier",
                    "--classifier-weights", str(tmp_path / "clf.safetensors"), "--no-cache", "--json"]) == 0
        return json.loads(capsys.readouterr().out).get("class_acc")

    with np.load(out) as z:
        images, labels = z["arr_0"], z["arr_1"]
    clf = load_classifier(tmp_path / "clf.safetensors")
    with torch.no_grad():
        pred = clf(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()).argmax(1).numpy()
    expected = float((pred == labels).mean())
    assert class_acc(out) == pytest.approx(expected)
    np.savez(tmp_path / "old.npz", arr_0=images, labels=labels)  # an sgbench sample file of an earlier version
    assert class_acc(tmp_path / "old.npz") == pytest.approx(expected)
    np.savez(tmp_path / "bare.npz", images)  # DiT's sample_ddp.py: arr_0 only -> no class accuracy
    assert class_acc(tmp_path / "bare.npz") is None
