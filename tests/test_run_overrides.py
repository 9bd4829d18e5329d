"""`sgbench run SUITE --set KEY=VALUE`: typed and checked like the file, named in its errors,
recorded in the run directory, compared by --resume, passed to local workers and rehearsals."""

import contextlib
import io
import json
import subprocess
import sys

import pytest
import yaml

from sgbench.cli import main
from sgbench.config import load_suite
from sgbench.errors import UserError
from test_run_pipeline import run, suite_file

QUICKSTART = "suites/quickstart.yaml"


def _cli(*args):
    """(exit code, stderr) of `sgbench ARGS`."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(map(str, args)))
    return code, err.getvalue()


# ---- typed like the file -------------------------------------------------------------------

def test_values_are_yaml_typed_and_checked_like_the_file():
    loaded = load_suite(QUICKSTART, overrides=[
        "sampler.steps=20", "search.space.omega=[1.5, 2.0]", "methods[1].omega=3", "metrics.reference={dataset: shapes, n: 64}",
        "search.pruning=null", "description=a changed copy"])
    s = loaded.suite
    assert s.sampler.steps == 20 and isinstance(s.sampler.steps, int)
    assert s.search.space.omega == [1.5, 2.0]
    assert s.methods[1].omega == 3.0 and isinstance(s.methods[1].omega, float)  # an int for a float, as in the file
    assert s.metrics.reference.n == 64 and s.search.pruning is None
    assert s.description == "a changed copy"
    assert s.methods[0].name == "unguided" and s.sampler.batch_size == 100  # the rest is the file's
    assert loaded.overrides == ("sampler.steps=20", "search.space.omega=[1.5, 2.0]", "methods[1].omega=3",
                                "metrics.reference={dataset: shapes, n: 64}", "search.pruning=null",
                                "description=a changed copy")
    assert load_suite(QUICKSTART).suite.sampler.steps == 16  # the file itself is unchanged


def test_a_key_or_section_the_file_leaves_out_is_added(tmp_path):
    data = yaml.safe_load(open(QUICKSTART))
    del data["sampler"], data["metrics"]["batch_size"]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    s = load_suite(path, check_files=False, overrides=["sampler.steps=3", "metrics.batch_size=50",
                                                        "metrics.bootstrap=0"]).suite
    assert s.sampler.steps == 3 and s.sampler.solver == "euler"  # a new section starts with its defaults
    assert s.metrics.batch_size == 50 and s.metrics.bootstrap == 0


def test_later_overrides_refine_earlier_ones_but_one_key_twice_is_refused():
    s = load_suite(QUICKSTART, overrides=["search.space={gamma_strong: [0.0], gamma_weak: [0.5], omega: [2.0]}",
                                          "search.space.omega=[4.0]"]).suite
    assert s.search.space.omega == [4.0] and s.search.space.gamma_weak == [0.5]
    with pytest.raises(UserError, match=r"^--set sampler.steps is given twice \(sampler.steps=1 and sampler.steps=2\)"):
        load_suite(QUICKSTART, overrides=["sampler.steps=1", "sampler.steps=2"])


@pytest.mark.parametrize("text,message", [
    ("sampler.steps=abc", "--set sampler.steps=abc: suite.sampler.steps: expected an integer, got 'abc'"),
    ("sampler.stpes=20", "--set sampler.stpes=20: suite.sampler.stpes: unknown key (did you mean 'steps'?)"),
    ("serch.budget=3", "--set serch.budget=3: suite.serch: unknown key (did you mean 'search'?)"),
    ("sampler.steps=0", "--set sampler.steps=0: suite.sampler.steps: must be >= 1"),
    ("sampler.dtype=null", "--set sampler.dtype=null: suite.sampler.dtype: required, expected one of"),
    ("methods[9].omega=2", "--set methods[9].omega=2: suite.methods[9] is out of range: the list has 4 entries"),
    ("sampler[0]=1", "--set sampler[0]=1: suite.sampler is a mapping in the suite, not a list"),
    ("sampler.steps.x=1", "--set sampler.steps.x=1: suite.sampler.steps is 16 in the suite, not a mapping"),
    ("search.space.omega[3]=1", "--set search.space.omega[3]=1: suite.search.space.omega[3] is out of range"),
    ("sampler.steps", "--set sampler.steps: expected KEY=VALUE"),
    ("=3", "--set =3: empty key before '='"),
    ("a..b=1", "--set a..b=1: 'a..b' is not a key path"),
    ("methods[-1].omega=2", "--set methods[-1].omega=2: 'methods[-1].omega' is not a key path"),
    ("sampler.steps=[1,", "--set sampler.steps=[1,: invalid YAML at line 1, column 4"),
    ("sampler.steps=*x", "--set sampler.steps=*x: invalid YAML at line 1, column 1: aliases (*x) are not allowed"),
    ("name=!!python/object/apply:os.system [echo]", "could not determine a constructor for the tag"),
    ("sampler.steps=1\nname=x", "control characters (line breaks) are not allowed"),
    ("model.checkpoint=nope.safetensors", "--set model.checkpoint=nope.safetensors: 1 file is missing: "
                                          "[1] suite.model.checkpoint = "),
    # a check across keys: named because the file alone passes it
    ("metrics.n_samples=100", "--set metrics.n_samples=100: suite.search.pruning.fidelities[0]: must be < "
                              "metrics.n_samples (100)"),
])
def test_bad_overrides_are_one_line_errors_naming_the_override(text, message):
    with pytest.raises(UserError) as e:
        load_suite(QUICKSTART, overrides=[text])
    assert str(e.value).startswith(message) if message.startswith("--set") else message in str(e.value)
    assert "\n" not in str(e.value)


def test_an_error_of_the_file_itself_does_not_blame_an_override(tmp_path):
    text = open(QUICKSTART).read().replace("steps: 16", "steps: many")
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as e:
        load_suite(path, overrides=["metrics.n_samples=400"])
    assert str(e.value).startswith("suite.sampler.steps: expected an integer, got 'many'")
    text = open(QUICKSTART).read().replace("  batch_size: 250", "  batch_size: 250\n  n_samples: 150")
    path.write_text(text.replace("  n_samples: 500\n", ""))  # fidelity 200 >= n_samples 150: the file's
    with pytest.raises(UserError) as e:
        load_suite(path, overrides=["sampler.steps=4"])
    assert str(e.value).startswith("suite.search.pruning.fidelities[0]: must be < metrics.n_samples (150)")


# ---- the command line ----------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--set", "sampler.steps=abc"], "sgbench run: error: --set sampler.steps=abc: suite.sampler.steps: expected an "
                                     "integer, got 'abc'"),
    (["--set", "sampler.steps"], "sgbench run: error: --set sampler.steps: expected KEY=VALUE"),
    (["--set", "methods[7].name=x"], "sgbench run: error: --set methods[7].name=x: suite.methods[7] is out of range"),
    (["--set", "sampler.stpes=20"], "sgbench run: error: --set sampler.stpes=20: suite.sampler.stpes: unknown key"),
    (["--rehearse", "--set", "threads=-1"], "sgbench run: error: --set threads=-1: suite.threads: must be >= 0"),
])
def test_cli_refuses_a_bad_override_with_one_line_and_writes_nothing(tmp_path, args, message):
    code, err = _cli("run", QUICKSTART, "--out", tmp_path / "results", "--no-progress", *args)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


# ---- recorded and compared -------------------------------------------------------------------

def test_the_run_records_its_overrides_and_resume_compares_them(tmp_path):
    suite = suite_file(tmp_path)
    sets = ["metrics.n_samples=8", "search.space.omega=[1.5, 2.0]"]
    run_dir = run(tmp_path, suite, max_trials=1, overrides=sets)
    text = (run_dir / "suite.yaml").read_text()
    assert "# with --set metrics.n_samples=8 --set 'search.space.omega=[1.5, 2.0]'\n" in text
    snap = yaml.safe_load(text)
    assert snap["metrics"]["n_samples"] == 8 and snap["search"]["space"]["omega"] == [1.5, 2.0]
    assert json.loads((run_dir / "env.json").read_text())["overrides"] == sets

    with pytest.raises(UserError, match=r"suite differs .*\(suite\.metrics\.n_samples\); it was started with "
                                        r"--set metrics\.n_samples=8 --set 'search\.space\.omega=\[1\.5, 2\.0\]', "
                                        r"this has no --set; start a new run"):
        run(tmp_path, suite, resume=True)
    with pytest.raises(UserError, match=r"suite differs .*\(suite\.search\.space\.omega \(length\)\); it was started "
                                        r"with .*this has --set metrics\.n_samples=8 --set 'search\.space\.omega=\[2\.0\]'"):
        run(tmp_path, suite, resume=True, overrides=["metrics.n_samples=8", "search.space.omega=[2.0]"])
    # the same values resume, however they are written
    logs = []
    from test_run_pipeline import FakeStages
    from sgbench.run.main import run_suite

    result = run_suite(suite, out=str(tmp_path / "results"), stages_factory=FakeStages, progress=False, argv=["t"],
                       log=logs.append, resume=True, max_trials=1,
                       overrides=["search.space.omega=[1.5, 2]", "metrics.n_samples=8"])
    assert result.run_dir == run_dir and result.unfinished
    hint = next(m for m in logs if "--max-trials" in m)
    assert "--set 'search.space.omega=[1.5, 2]' --set metrics.n_samples=8 --resume --name fake" in hint
    assert json.loads((run_dir / "env.json").read_text())["resumes"][0]["overrides"] == [
        "search.space.omega=[1.5, 2]", "metrics.n_samples=8"]


def test_overrides_that_equal_the_file_resume_a_run_started_without_them(tmp_path):
    suite = suite_file(tmp_path)
    run_dir = run(tmp_path, suite, max_trials=1)
    assert "# with" not in (run_dir / "suite.yaml").read_text()
    assert run(tmp_path, suite, resume=True, max_trials=1, overrides=["metrics.n_samples=16"]) == run_dir


def test_a_rehearsal_shrinks_the_overridden_suite(tmp_path):
    from sgbench.rehearse.session import Rehearsal

    loaded = load_suite(QUICKSTART, check_files=False,
                        overrides=["methods[1].omega=3.5", "sampler.steps=30", "metrics.n_samples=400"])
    rehearsal = Rehearsal(loaded, tmp_path / "results", None, False, log=lambda m: None)
    s = rehearsal.loaded.suite
    assert s.methods[1].omega == 3.5  # the override holds ...
    assert s.sampler.steps < 30 and s.metrics.n_samples < 400  # ... and the rehearsal's sizes apply after it
    assert rehearsal.loaded.overrides == loaded.overrides
    assert not (tmp_path / "results").exists()


def test_local_workers_load_the_suite_with_the_same_overrides(tmp_path):
    """Worker 1 joins with --resume's check: without the overrides it would refuse (exit 2)."""
    from test_run_workers import ENV, ROOT, build_suite, rows

    suite = build_suite(tmp_path, n_samples=16, points=3, steps=2)
    proc = subprocess.run([sys.executable, "-m", "sgbench.cli", "run", str(suite), "--out", str(tmp_path / "results"),
                           "--no-progress", "--set", "metrics.n_samples=8", "--set", "sampler.batch_size=8"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "started 1 local worker(s)" in proc.stderr
    got = rows(tmp_path / "results" / "workers")
    assert len(got) == 4 and all(r["status"] == "complete" and r["n_samples"] == "8" for r in got)
