"""The guidance vocabulary: one validated config per setting, the same rules for suites and CLI."""

import pytest
import yaml

from sgbench.cli import main as cli_main
from sgbench.config.typed import from_dict
from sgbench.errors import UserError
from sgbench.guidance.vocabulary import (METHODS, PRESETS, SEARCHABLE, GuidanceConfig, method_display_name,
                                         method_order)


def test_gammas_are_normalised_once():
    cfg = GuidanceConfig("sg", 2, "0.5", "constant:0.9")
    assert (cfg.omega, cfg.gamma_strong, cfg.gamma_weak) == (2.0, 0.5, 0.9) and cfg.schedule == ""
    assert GuidanceConfig("none", gamma_strong="linear:0.5:0.5").gamma_strong == 0.5  # constant schedule
    mixed = GuidanceConfig("ag+sg", 2.5, " cosine:0.0:0.6 ", "linear:0.6:0.0")
    assert mixed.gamma_strong == "cosine:0.0:0.6" and mixed.schedule == "cosine+linear"
    assert GuidanceConfig("cfg", 1.5) == GuidanceConfig("cfg", 1.5, 0.0)  # frozen, comparable, hashable
    assert len({GuidanceConfig("cfg", 1.5), GuidanceConfig("cfg", 1.5)}) == 1


def test_one_form_from_yaml_to_trials_csv():
    cfg = GuidanceConfig("cfg+sg", 2.0, 0.0, 0.5, interval=(0.2, 0.9), name="b1")
    d = cfg.to_dict()  # the Optuna user attribute of a trial
    assert d["label"] == "b1" and d["interval"] == [0.2, 0.9]
    assert GuidanceConfig.from_dict(d) == cfg
    assert cfg.columns() == {"method": "cfg+sg", "gamma_strong": 0.0, "gamma_weak": 0.5, "omega": 2.0,
                             "schedule": "", "label": "b1", "interval": [0.2, 0.9]}
    assert cfg.describe() == "b1 γ=(0, 0.5) ω=2"
    # a suite's method entry is the same class, read from YAML with the key path in errors
    entry = from_dict(GuidanceConfig, {"name": "b1", "method": "cfg+sg", "omega": 2, "gamma_strong": 0,
                                       "gamma_weak": 0.5, "interval": [0.2, 0.9]}, "suite.methods[0]")
    assert entry == cfg


def test_the_vocabulary_knows_each_methods_branches_and_names():
    assert SEARCHABLE == ("sg", "cfg+sg", "ag+sg")
    assert [m for m, s in METHODS.items() if s.needs_weak_network] == ["ag", "ag+sg"]
    assert [method_display_name(m) for m in METHODS] == ["Unguided", "CFG", "SG", "CFG+SG", "AG", "AG+SG", "ICG"]
    assert method_display_name("old") == "old" and method_order("old") == len(METHODS)
    assert PRESETS["sg_fid"].needs_weak_network and PRESETS["sg_flops"].name == "SG_FLOPS"


BAD = [  # (fields, suite key and message, CLI option and message): one rule, two spellings of where
    (dict(method="cfg", omega=50), "omega: must be <= 20", "--omega: must be <= 20"),
    (dict(method="cfg", omega=2, interval=[0.5, 0.5]), "interval: must satisfy 0 <= t_lo < t_hi",
     "--interval: must satisfy 0 <= t_lo < t_hi"),
    (dict(method="cfg", omega=2, gamma_weak=0.5), "gamma_weak: applies only to sg", "--gamma-weak: applies only to sg"),
    (dict(method="sg", omega=2, gamma_strong=0.1), "gamma_weak: required for sg", "--gamma-weak: required for sg"),
    (dict(method="sg", omega=2, gamma_strong="exp:0:1", gamma_weak=0.5), "gamma_strong: expected a rate in [0, 1)",
     "--gamma-strong: expected a rate in [0, 1)"),
    (dict(method="sg", omega=2, gamma_strong=0.5, gamma_weak=0.2), "sg needs gamma_strong < gamma_weak",
     "sg needs gamma_strong < gamma_weak"),
]


def _cli_args(fields: dict) -> list:
    flags = {"method": "--guidance", "omega": "--omega", "gamma_strong": "--gamma-strong",
             "gamma_weak": "--gamma-weak", "interval": "--interval"}
    out = []
    for k, v in fields.items():
        out += [flags[k], ",".join(map(str, v)) if isinstance(v, list) else str(v)]
    return out


@pytest.mark.parametrize("fields, suite_msg, cli_msg", BAD)
def test_suites_and_every_cli_command_apply_the_same_rules(tmp_path, capsys, fields, suite_msg, cli_msg):
    with pytest.raises(UserError) as e:
        from_dict(GuidanceConfig, {"name": "x", **fields}, "suite.methods[2]")
    assert str(e.value).startswith("suite.methods[2]") and suite_msg in str(e.value)
    for command in (["flops", "--arch", "DiT-S/8"],
                    ["sample", "--arch", "DiT-S/8", "--num-samples", "1", "--out", str(tmp_path / "o.npz")]):
        assert cli_main([*command, *_cli_args(fields)]) == 2
        err = capsys.readouterr().err
        assert cli_msg in err and err.count("\n") == 1, err


def test_a_suite_method_entry_is_a_guidance_config(tmp_path):
    from sgbench.config import load_suite

    suite = {"name": "t", "model": {"checkpoint": "m.safetensors"},
             "methods": [{"name": "sgfid", "method": "ag+sg", "omega": 2.5, "gamma_strong": "cosine:0.0:0.6",
                          "gamma_weak": "cosine:0.6:0.0"}, {"name": "c", "method": "cfg", "omega": 1.5,
                                                            "gamma_strong": "0.5"}],
             "metrics": {"extractor": "classifier", "reference": {"dataset": "shapes"}}}
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({**suite, "model": {**suite["model"], "weak_checkpoint": "w"}}))
    loaded = load_suite(tmp_path / "suite.yaml", check_files=False)
    a, b = loaded.suite.methods
    assert isinstance(a, GuidanceConfig) and a == PRESETS["sg_fid"].replace(name="sgfid", schedule="cosine")
    assert b.gamma_strong == 0.5  # a numeric string is a rate, as on the command line
    assert loaded.snapshot()["methods"][1]["gamma_strong"] == 0.5
