"""Progress bars of long commands (sgbench.progress): count, rate and ETA on a terminal; nothing on
a log file or pipe, nothing with --no-progress. The commands run on tiny inputs; their stderr is a
fake terminal (`TTY`) so the bar would be drawn if nothing stopped it."""

import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sgbench.cli import main as cli
from sgbench.progress import bar, counted
from sgbench.sampling.distributed import DistEnv
from test_run_cli import tiny_suite  # noqa: F401  (a fixture)

from sgbench.sampling.shards import finished_images, run_sharded, shard_dir, shard_path, shard_ranges, write_shard

QUICKSTART = Path(__import__("sgbench").__file__).parent / "assets" / "quickstart" / "model.safetensors"
RATE_AND_ETA = re.compile(r"\[\d\d:\d\d<\d\d:\d\d, +[\d.]+img/s\]")  # [elapsed<remaining, rate]


class TTY(io.StringIO):
    def isatty(self):
        return True


def on_terminal(monkeypatch) -> TTY:
    """sys.stderr as a terminal for the rest of the test; returns it (its text: .getvalue()).
    Called in the test body: pytest's output capture re-installs its own sys.stderr after fixtures."""
    stream = TTY()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def frames(text: str, desc: str) -> list[str]:
    """The redrawn states of the bar `desc` (tqdm rewrites its line after a carriage return)."""
    return [f for f in re.split(r"[\r\n]", text) if f.startswith(f"{desc}:")]


# ---- the helper ------------------------------------------------------------------------------
def test_a_bar_on_a_terminal_shows_count_rate_and_eta():
    stream = TTY()
    for _ in counted([np.zeros(2), np.zeros(3)], bar(5, "features", stream=stream)):
        pass
    last = frames(stream.getvalue(), "features")[-1]
    assert "5/5" in last and "100%" in last and RATE_AND_ETA.search(last), last


@pytest.mark.parametrize("stream, enabled", [(io.StringIO(), True), (TTY(), False)], ids=["not-a-terminal", "disabled"])
def test_no_bar_on_a_log_file_or_when_disabled(stream, enabled):
    b = bar(4, "features", stream=stream, enabled=enabled)
    items = list(counted([[1, 2], [3, 4]], b))
    assert items == [[1, 2], [3, 4]] and stream.getvalue() == ""  # the loop itself is unchanged


def test_counted_closes_the_bar_when_the_loop_fails():
    stream = TTY()
    b = bar(4, "features", stream=stream)
    with pytest.raises(ValueError):
        for _ in counted([[1], [2]], b):
            raise ValueError("consumer failed")
    assert b.disable  # closed (tqdm disables a closed bar)
    assert stream.getvalue().endswith("\n")  # the line is finished: the error message starts on its own


def test_work_done_before_counts_as_done_but_not_towards_the_rate():
    stream = TTY()
    b = bar(10, "sample", stream=stream, initial=6)
    assert "6/10" in frames(stream.getvalue(), "sample")[0]
    b.update(4)
    b.close()
    assert "10/10" in frames(stream.getvalue(), "sample")[-1]


def test_the_helper_imports_no_other_sgbench_module():
    from test_layering import ROOT, imported_modules

    assert {m for m in imported_modules(ROOT / "progress.py") if m.startswith("sgbench")} == set()


# ---- sgbench sample --------------------------------------------------------------------------
def _produce(indices):
    idx = np.arange(indices.start, indices.stop)
    yield idx, np.zeros((len(idx), 2, 2, 3), np.uint8), idx % 3


def test_sharded_sampling_counts_resumed_shards_as_done(tmp_path, monkeypatch):
    tty = on_terminal(monkeypatch)
    out = tmp_path / "s.npz"
    sdir = shard_dir(out)
    sdir.mkdir()
    write_shard(sdir, np.arange(0, 2), np.zeros((2, 2, 2, 3), np.uint8), np.zeros(2))  # a run killed after one shard
    run_sharded(_produce, out, 6, 2, {"a": 1}, log=lambda m: None, progress=True)
    sample = frames(tty.getvalue(), "sample")
    assert "2/6" in sample[0] and "6/6" in sample[-1] and RATE_AND_ETA.search(sample[-1])
    assert "6/6" in frames(tty.getvalue(), "merge")[-1]


def test_only_rank_0_draws_and_counts_every_workers_shards(tmp_path, monkeypatch):
    tty = on_terminal(monkeypatch)
    sdir = tmp_path / "s.npz.shards"
    sdir.mkdir()
    ranges = shard_ranges(7, 3)
    write_shard(sdir, np.arange(3, 6), np.zeros((3, 2, 2, 3), np.uint8), np.zeros(3))  # another worker's
    (sdir / f".{shard_path(sdir, 6, 7).name}.x.tmp").write_bytes(b"partial")  # not finished: not counted
    assert finished_images(sdir, ranges) == 3
    assert finished_images(tmp_path / "absent", ranges) == 0

    import sgbench.sampling.shards as shards

    # rank 1 of 2 without a process group: rank 0 finished nothing, the collectives return at once
    monkeypatch.setattr(shards, "broadcast_object", lambda env, obj: obj or [])
    monkeypatch.setattr(shards, "barrier", lambda env: None)
    monkeypatch.setattr(shards, "merge_shards", lambda *a, **k: None)
    (tmp_path / "other.npz.shards").mkdir()  # rank 0 makes it
    run_sharded(_produce, tmp_path / "other.npz", 4, 2, {"a": 1}, DistEnv(rank=1, world_size=2), lambda m: None,
                progress=True)
    assert tty.getvalue() == ""


def _sample_args(tmp_path, *extra):
    return ["sample", "--checkpoint", str(QUICKSTART), "--num-samples", "3", "--batch-size", "2", "--steps", "1",
            "--out", str(tmp_path / f"s{len(extra)}.npz"), *extra]


def test_sample_command_shows_a_bar_on_a_terminal_and_none_with_no_progress(tmp_path, monkeypatch):
    tty = on_terminal(monkeypatch)
    assert cli(_sample_args(tmp_path)) == 0
    sample = frames(tty.getvalue(), "sample")
    assert sample and "3/3" in sample[-1] and RATE_AND_ETA.search(sample[-1])
    tty.seek(0), tty.truncate()
    assert cli(_sample_args(tmp_path, "--no-progress")) == 0
    assert tty.getvalue() == ""  # nothing at all: sampling logs only what needs attention
    with np.load(tmp_path / "s0.npz") as a, np.load(tmp_path / "s1.npz") as b:
        assert np.array_equal(a["arr_0"], b["arr_0"])  # the bar changes nothing but stderr


# ---- sgbench evaluate ------------------------------------------------------------------------
@pytest.fixture
def eval_files(tmp_path):
    from sgbench.metrics.classifier import ClassifierConfig, ShapeClassifier, save_classifier

    torch.manual_seed(0)
    save_classifier(ShapeClassifier(ClassifierConfig(num_classes=3, image_size=16, width=4, feature_dim=6)).eval(),
                    tmp_path / "clf.safetensors")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "ref.npz", arr_0=rng.integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8))
    np.savez(tmp_path / "samples.npz", arr_0=rng.integers(0, 256, size=(10, 16, 16, 3), dtype=np.uint8))
    return ["evaluate", str(tmp_path / "samples.npz"), "--ref", str(tmp_path / "ref.npz"), "--extractor", "classifier",
            "--classifier-weights", str(tmp_path / "clf.safetensors"), "--batch-size", "4", "--no-cache",
            "--distance-dtype", "float32", "--json"]


def test_evaluate_shows_reference_and_sample_feature_bars(eval_files, capsys, monkeypatch):
    tty = on_terminal(monkeypatch)
    assert cli(eval_files) == 0
    ref, smp = frames(tty.getvalue(), "reference features"), frames(tty.getvalue(), "sample features")
    assert "12/12" in ref[-1] and RATE_AND_ETA.search(ref[-1]), ref
    assert "10/10" in smp[-1] and RATE_AND_ETA.search(smp[-1]), smp
    with_bars = json.loads(capsys.readouterr().out)
    tty.seek(0), tty.truncate()
    assert cli([*eval_files, "--no-progress"]) == 0
    err = tty.getvalue()
    assert "\r" not in err and "img/s" not in err
    assert "computing sample features of 10 images" in err  # the one-line notes stay (logs show the phase)
    assert json.loads(capsys.readouterr().out) == with_bars


# ---- sgbench run: the reference features -----------------------------------------------------
def test_run_draws_the_reference_features_bar_unless_no_progress(tiny_suite, tmp_path, monkeypatch):  # noqa: F811
    tty = on_terminal(monkeypatch)
    args = ["run", str(tiny_suite), "--no-report", "--max-trials", "1"]
    assert cli([*args, "--out", str(tmp_path / "a")]) in (0, 3)
    ref = frames(tty.getvalue(), "reference features")
    assert ref and "32/32" in ref[-1] and RATE_AND_ETA.search(ref[-1]), ref
    assert frames(tty.getvalue(), "sgbench run")
    tty.seek(0), tty.truncate()
    assert cli([*args, "--out", str(tmp_path / "b"), "--no-progress"]) in (0, 3)
    assert "\r" not in tty.getvalue() and "img/s" not in tty.getvalue()


# ---- sgbench train ---------------------------------------------------------------------------
def test_train_bar_counts_steps_with_the_loss(tmp_path, monkeypatch):
    from test_train_loop import tiny_config

    from sgbench.train import parse_train_config, train

    tty = on_terminal(monkeypatch)
    raw = tiny_config(tmp_path, steps=2, ckpt_every=100)
    train(parse_train_config(raw), raw, progress=True)
    last = frames(tty.getvalue(), "train class_image")[-1]
    assert "2/2" in last and "step/s" in last and "loss=" in last, last
    tty.seek(0), tty.truncate()
    raw["output"]["dir"] = str(tmp_path / "quiet")
    train(parse_train_config(raw), raw, progress=False)
    assert tty.getvalue() == ""


# ---- sgbench t2i -----------------------------------------------------------------------------
def test_t2i_geneval_bar_unless_no_progress(tmp_path, capsys, monkeypatch):
    from sgbench.t2i.geneval import write_geneval_folder
    from sgbench.t2i.shapes_world import render, sample_scenes

    tty = on_terminal(monkeypatch)
    for i, (objects, meta) in enumerate(sample_scenes(3, seed=5)):
        write_geneval_folder(tmp_path / "imgs", i, meta, [render(objects)])
    assert cli(["t2i", "geneval", str(tmp_path / "imgs"), "--detector", "shapes"]) == 0
    last = frames(tty.getvalue(), "geneval")[-1]
    assert "3/3" in last and RATE_AND_ETA.search(last), last
    tty.seek(0), tty.truncate()
    assert cli(["t2i", "geneval", str(tmp_path / "imgs"), "--detector", "shapes", "--no-progress"]) == 0
    assert tty.getvalue() == ""
    assert "Overall score (avg. over tasks): 1.00000" in capsys.readouterr().out


def test_hpsv3_client_bar_counts_images(tmp_path, monkeypatch):
    from PIL import Image

    from sgbench.t2i.hpsv3_client import HPSv3Client, HPSv3WorkerConfig

    tty = on_terminal(monkeypatch)
    paths = []
    for i in range(3):
        Image.new("RGB", (4, 4), (i, i, i)).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    with HPSv3Client(HPSv3WorkerConfig(python=sys.executable, scorer="fake", batch_size=2)) as client:
        client.score(paths, ["p"] * 3, progress=True)
        last = frames(tty.getvalue(), "hpsv3")[-1]
        assert "3/3" in last and RATE_AND_ETA.search(last), last  # images, not batches
        tty.seek(0), tty.truncate()
        client.score(paths, ["p"] * 3)
    assert "hpsv3:" not in tty.getvalue()
