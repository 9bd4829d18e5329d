"""Config validation: unknown keys, wrong types and bad values give one-line errors with the key
path, and `sgbench train` turns them into exit code 2."""

import pytest
import yaml

from sgbench.cli import main as cli_main
from sgbench.errors import UserError
from sgbench.train import parse_train_config
from sgbench.train.config import LoopConfig, from_dict


def base():
    return {"task": "class_image", "output": {"dir": "/tmp/x"}, "data": {"name": "shapes"}}


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"train": {"stpes": 3}}, r"config.train.stpes: unknown key"),
        ({"train": {"steps": "ten"}}, r"config.train.steps: expected an integer, got 'ten'"),
        ({"train": {"steps": True}}, r"config.train.steps: expected an integer"),
        ({"train": {"lr": -1}}, r"config.train.lr: must be > 0"),
        ({"train": {"betas": [0.9]}}, r"config.train.betas: expected a list of 2 values"),
        ({"train": {"precision": "fp16"}}, r"config.train.precision: must be one of 'auto', 'fp32', 'bf16'"),
        ({"train": {"ema_decay": 1.0}}, r"config.train.ema_decay: must lie in \[0, 1\)"),
        ({"output": {}}, r"config.output.dir: required key missing"),
        ({"extra": 1}, r"config.extra: unknown key"),
    ],
)
def test_bad_values_name_the_key(patch, message):
    raw = base()
    for k, v in patch.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) and k in raw and v else v
    with pytest.raises(UserError, match=message):
        parse_train_config(raw)


def test_types_are_converted():
    c = from_dict(LoopConfig, {"lr": 1, "betas": [0.9, 0.95], "keep_steps": [10, 20]})
    assert c.lr == 1.0 and isinstance(c.lr, float)
    assert c.betas == (0.9, 0.95) and c.keep_steps == (10, 20)


def test_task_sections_validated_by_the_task(tmp_path):
    from sgbench.train import train

    raw = {**base(), "model": {"hidden": 3}}
    with pytest.raises(UserError, match=r"config.model.hidden: unknown key"):
        train(parse_train_config(raw), raw, progress=False)
    raw = {**base(), "objective": {"route_rate": 1.5}}
    with pytest.raises(UserError, match=r"config.objective.route_rate: must lie in \[0, 1\)"):
        train(parse_train_config(raw), raw, progress=False)
    raw = {**base(), "task": "nope"}
    with pytest.raises(UserError, match="unknown task 'nope'"):
        train(parse_train_config(raw), raw, progress=False)


def test_cli_exit_2_one_line(tmp_path, capsys):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({**base(), "train": {"batch": 4}}))
    assert cli_main(["train", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    prefix = "sgbench train: error: config.train.batch: unknown key (did you mean 'batch_size'?) (known: "
    assert err == prefix + err.split("(known: ")[1] and "batch_size, lr" in err
    assert "\n" not in err
    p.write_text("task: [unclosed")
    assert cli_main(["train", str(p)]) == 2
    assert "invalid YAML" in capsys.readouterr().err
    assert cli_main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "training config not found" in capsys.readouterr().err


def test_shipped_configs_validate():
    from sgbench.train import load_train_config

    for name in ("suites/train_quickstart.yaml", "suites/train_classifier.yaml"):
        cfg, raw = load_train_config(name)
        assert cfg.output.export.endswith(".safetensors") and "/" not in cfg.output.export  # under output.dir


def test_unknown_arch_and_mismatched_input(tmp_path):
    from sgbench.train import train

    raw = {**base(), "model": {"arch": "SiT-Q/2"}}
    with pytest.raises(UserError, match=r"config.model.arch: unknown architecture 'SiT-Q/2'"):
        train(parse_train_config(raw), raw, progress=False)
    raw = {**base(), "data": {"name": "shapes", "n_train": 16, "n_heldout": 0},
           "model": {"input_size": 16, "patch_size": 4, "hidden_size": 8, "depth": 1, "num_heads": 2}}
    with pytest.raises(UserError, match=r"do not match the data \(32/3\)"):
        train(parse_train_config(raw), raw, progress=False)
