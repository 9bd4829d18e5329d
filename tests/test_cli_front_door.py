"""The front door: the distribution's name and version, the shipped suites in an installed copy
(`sgbench suites`, `sgbench:suites/...`), help and fixed choices on every option, the stdout
contract of `sgbench run`, one-line errors for the wrong kind of YAML file and for a tolerance
that gates nothing, and docs/cli.md generated from the parsers."""

import argparse
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

import sgbench
from sgbench.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"


def one_line_error(capsys, *needles):
    out, err = capsys.readouterr()
    err = err.strip()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# ---- distribution and version ---------------------------------------------------------------------

def test_the_distribution_is_not_pypis_sgbench_and_reads_its_version_from_the_package():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["name"] == sgbench.DISTRIBUTION == "sparse-guidance-bench"
    assert project["project"]["scripts"] == {"sgbench": "sgbench.cli:main"}  # the command keeps its name
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "sgbench.__version__"}


def test_version_prints_sgbench_and_the_version(capsys, monkeypatch):
    from importlib import metadata

    with pytest.raises(SystemExit):  # argparse's version action, as `sgbench --version` runs it
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out == f"sgbench {sgbench.version()}\n"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sgbench {sgbench.version()}\n"

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)  # a plain checkout: the package's own version
    assert sgbench.version() == sgbench.__version__
    monkeypatch.setattr(metadata, "version", lambda name: {"sparse-guidance-bench": "9.9"}[name])
    assert sgbench.version() == "9.9"  # installed: the distribution's metadata, never PyPI's `sgbench`


def test_env_json_records_this_sgbench_not_a_distribution_named_sgbench(monkeypatch):
    from sgbench.run import env

    assert "sgbench" not in env.PACKAGES  # PyPI's sgbench would be recorded as ours
    packages = env.environment("cpu", ["sgbench"])["packages"]
    assert packages["sgbench"] == sgbench.__version__


# ---- shipped suites -------------------------------------------------------------------------------

def test_sgbench_suites_lists_every_shipped_file_with_its_command_and_description(capsys):
    assert main(["suites"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    files = sorted(p.name for p in SUITES.glob("*.yaml"))
    assert [line.split()[0] for line in lines] == [f"sgbench:suites/{f}" for f in files]
    for line, name in zip(lines, files):
        data = yaml.safe_load((SUITES / name).read_text())
        command = "train" if "task" in data else "run"
        assert line.split()[1] == command, line
        assert data["description"] and line.split(None, 2)[2] == " ".join(data["description"].split())
    assert err == ""


def test_a_shipped_suite_resolves_through_the_sgbench_prefix():
    from sgbench.config import load_suite

    loaded = load_suite("sgbench:suites/quickstart.yaml")  # every file it names exists
    assert loaded.source == Path(sgbench.__file__).parent / "suites" / "quickstart.yaml"
    assert loaded.source.resolve() == (SUITES / "quickstart.yaml").resolve()
    assert loaded.suite.name == "quickstart"
    from sgbench.train import load_train_config

    cfg, _ = load_train_config("sgbench:suites/train_classifier.yaml")
    assert cfg.task == "classifier"


def test_an_unknown_shipped_suite_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", "sgbench:suites/nope.yaml", "--out", str(out)]) == 2
    one_line_error(capsys, "sgbench:suites/nope.yaml: no such file shipped with sgbench", "`sgbench suites`")
    assert not out.exists()


@pytest.mark.parametrize("name", sorted(p.name for p in SUITES.glob("train_*.yaml")))
def test_run_on_a_training_config_names_sgbench_train(tmp_path, capsys, monkeypatch, name):
    out = tmp_path / "results"
    path = f"suites/{name}"
    monkeypatch.chdir(REPO)
    assert main(["run", path, "--out", str(out)]) == 2
    one_line_error(capsys, f"{path} is a training config", f"`sgbench train {path}`")
    assert not out.exists()


def test_train_on_a_suite_names_sgbench_run(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    assert main(["train", "suites/quickstart.yaml", "--output-dir", str(tmp_path / "t")]) == 2
    one_line_error(capsys, "suites/quickstart.yaml is a benchmark suite", "`sgbench run suites/quickstart.yaml`")
    assert main(["train", "sgbench:suites/t2i_quickstart.yaml"]) == 2
    one_line_error(capsys, "`sgbench run sgbench:suites/t2i_quickstart.yaml`")
    assert not (tmp_path / "t").exists()


def test_a_built_wheel_ships_the_suites_and_works_outside_a_checkout(tmp_path):
    """Build the wheel from a copy of the sources (setuptools writes build/ and egg-info where it
    builds), install it into a plain folder, and use it from a directory that is no checkout
    (about 8 s; setuptools comes with the dev extra)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "suites", src / "suites", ignore=ignore)
    shutil.copytree(REPO / "sgbench", src / "sgbench", symlinks=True, ignore=ignore)  # sgbench/suites: a link
    assert (src / "sgbench" / "suites").is_symlink()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith(f"sparse_guidance_bench-{sgbench.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"sgbench/suites/{p.name}" for p in SUITES.glob("*.yaml")}
    assert shipped <= names
    assert "sgbench/assets/quickstart/model.safetensors" in names
    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}  # the installed copy only, not this checkout
    probe = ("import sgbench, sys; from sgbench.cli import main; from sgbench.config import load_suite; "
             "print(sgbench.__file__); load_suite('sgbench:suites/quickstart.yaml'); sys.exit(main(['suites']))")
    res = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    first, *lines = res.stdout.splitlines()
    assert Path(first).resolve().is_relative_to(site.resolve())
    assert len(lines) == len(shipped) and lines[0].startswith("sgbench:suites/")
    print(f"wheel built, installed and used in {time.perf_counter() - t0:.1f}s")


# ---- help and choices -----------------------------------------------------------------------------

def subparsers(parser, path=("sgbench",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from subparsers(sub, (*path, name))


def options_without_help(parser) -> list[str]:
    missing = []
    for path, p in subparsers(parser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {a.dest for a in action._choices_actions if a.help}
                missing += [f"{' '.join(path)} {n} (no command help)" for n in action.choices if n not in described]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_option_of_every_command_has_help():
    assert options_without_help(build_parser()) == []


def test_the_walk_sees_options_and_commands_without_help():
    parser = argparse.ArgumentParser(prog="p")
    sub = parser.add_subparsers()
    x = sub.add_parser("x", help="x")
    x.add_argument("--bare")
    x.add_argument("pos", help="a positional")
    x.add_subparsers().add_parser("y").add_argument("z", help="z")
    assert options_without_help(parser) == ["sgbench x --bare", "sgbench x y (no command help)"]


def option(path, flag):
    parsers = dict(subparsers(build_parser()))
    return next(a for a in parsers[("sgbench", *path)]._actions if flag in a.option_strings)


def test_fixed_sets_are_choices_and_match_their_registries():
    from sgbench.commands import choices as C
    from sgbench.guidance.vocabulary import METHODS, PRESETS
    from sgbench.metrics.extractors import available_extractors
    from sgbench.models import PARAMETRIZATIONS
    from sgbench.models.loading import FAMILY_ALIASES
    from sgbench.models.registry import backbone_families
    from sgbench.sampling import LABEL_MODES, SOLVERS
    from sgbench.sampling.decode import ROUNDINGS

    assert (C.SOLVERS, C.LABEL_MODES, C.ROUNDINGS) == (SOLVERS, LABEL_MODES, ROUNDINGS)
    assert C.PARAMETRIZATIONS == tuple(PARAMETRIZATIONS)
    assert list(C.FAMILIES) == backbone_families() and set(C.FAMILY_ALIASES) == set(FAMILY_ALIASES)
    assert sorted(C.EXTRACTORS) == available_extractors()
    for command in ("sample", "flops"):
        assert tuple(option([command], "--guidance").choices) == tuple(METHODS)
        assert tuple(option([command], "--preset").choices) == tuple(PRESETS)
        assert tuple(option([command], "--solver").choices) == SOLVERS
    for flag, values in (("--labels", LABEL_MODES), ("--rounding", ROUNDINGS),
                         ("--parametrization", ("auto", *PARAMETRIZATIONS)), ("--device", ("auto", "cpu", "cuda"))):
        assert tuple(option(["sample"], flag).choices) == tuple(values), flag
    assert tuple(option(["convert"], "--parametrization").choices) == ("auto", *PARAMETRIZATIONS)
    assert set(option(["convert"], "--family").choices) == {"auto", *backbone_families(), *FAMILY_ALIASES}
    assert sorted(option(["evaluate"], "--extractor").choices) == available_extractors()


def test_a_value_outside_the_choices_is_one_line(capsys):
    assert main(["flops", "--guidance", "cgf"]) == 2
    one_line_error(capsys, "argument --guidance: invalid choice: 'cgf'", "'cfg'")


# ---- sgbench check --tolerance --------------------------------------------------------------------

def _run(root, name, fd):
    from sgbench.report.synthetic import write_run

    rows = [{"trial_id": f"s{seed}", "role": "search", "method": "sg", "gamma_strong": 0.5, "gamma_weak": 0.9,
             "omega": 2.0, "schedule": "", "n_samples": 64, "seed": seed, "fd_classifier": fd + seed,
             "class_acc": 0.8, "gflops": 1.0, "status": "complete"} for seed in (0, 1)]
    return write_run(root / name, rows, grids=False)


def test_a_tolerance_for_a_metric_neither_run_measures_is_an_error(tmp_path, capsys):
    base, new = _run(tmp_path, "base", 10.0), _run(tmp_path, "new", 10.0)
    args = ["check", str(new), "--baseline", str(base)]
    assert main(args + ["--tolerance", "fid=0.5"]) == 2
    err = one_line_error(capsys, "--tolerance fid: neither new nor base measures it")
    assert "they have: class_acc, fd_classifier, gflops" in err
    assert main(args + ["--tolerance", "fd_classifier=0.5,default=1%"]) == 0  # measured ones, and default
    capsys.readouterr()
    assert main(args + ["--tolerance", "fid=0.5,sfid=1"]) == 2
    one_line_error(capsys, "--tolerance fid, sfid: neither new nor base measures them")


# ---- docs/cli.md ----------------------------------------------------------------------------------

def test_docs_cli_md_is_generated_from_the_current_parsers():
    from sgbench.commands.reference import python_version, reference

    text = (REPO / "docs" / "cli.md").read_text()
    if f"(Python {python_version()}'s argparse)" not in text:
        pytest.skip("docs/cli.md was generated with another Python (argparse's layout differs between versions)")
    assert text == reference(), "regenerate it: python -m sgbench.commands.reference > docs/cli.md"
    for path, _ in subparsers(build_parser()):
        assert f"\n## {' '.join(path)}\n" in text
