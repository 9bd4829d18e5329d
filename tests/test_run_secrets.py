"""Credentials are masked wherever sgbench prints or stores them; report directories that are not
sgbench reports are never replaced."""

import pytest
import yaml

from sgbench import secrets
from sgbench.errors import UserError


@pytest.mark.parametrize("url, shown", [
    ("postgresql://bench:pw123@db:5432/sgbench", "postgresql://bench:***@db:5432/sgbench"),
    ("mysql+pymysql://u:p%40ss:word@h/db", "mysql+pymysql://u:***@h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ("postgresql://bench@db/sgbench", "postgresql://bench@db/sgbench"),
])
def test_urls_are_shown_without_their_password(url, shown):
    assert secrets.redact_url(url) == shown


def test_a_registered_password_is_masked_in_every_message():
    secrets.register_url("postgresql://bench:hunter2xyz@db/sgbench")
    assert "hunter2xyz" not in str(UserError("connection to db failed for password hunter2xyz"))
    assert secrets.redact("a traceback ... hunter2xyz ...") == "a traceback ... *** ..."
    secrets.register_url("postgresql://bench:p%40ssw0rdq@db/x")  # drivers print it decoded
    assert secrets.redact("p@ssw0rdq and p%40ssw0rdq") == "*** and ***"


def load_with_storage(tmp_path, url: str):
    from sgbench.config.loader import load_suite

    suite = {"name": "s", "model": {"checkpoint": "m.safetensors"}, "search": {"storage": url},
             "metrics": {"extractor": "classifier", "reference": {"dataset": "shapes"}, "keys": ["fd_classifier"]}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(suite))
    return load_suite(tmp_path / "s.yaml", check_files=False)


def test_the_suite_snapshot_masks_the_storage_password(tmp_path):
    loaded = load_with_storage(tmp_path, "postgresql://bench:Zq9secretpw@db/sgbench")
    assert loaded.storage == "postgresql://bench:Zq9secretpw@db/sgbench"  # Optuna gets the real URL
    from sgbench.run.rundir import snapshot_text

    text = snapshot_text(loaded)  # suite.yaml, which report.html embeds
    assert "Zq9secretpw" not in text and "postgresql://bench:***@db/sgbench" in text


def test_storage_variables_expand_and_their_values_stay_secret(tmp_path, monkeypatch):
    from sgbench.run.rundir import snapshot_text

    monkeypatch.setenv("SGB_TEST_PW", "Vv8envsecret")
    loaded = load_with_storage(tmp_path, "postgresql://bench:${SGB_TEST_PW}@db/sgbench")
    assert loaded.storage == "postgresql://bench:Vv8envsecret@db/sgbench"
    assert "${SGB_TEST_PW}" in snapshot_text(loaded)
    assert "Vv8envsecret" not in str(UserError(f"cannot connect to {loaded.storage}"))


def test_report_never_replaces_a_directory_that_is_not_a_report(tmp_path, capsys):
    from sgbench.cli import main
    from sgbench.report.synthetic import write_run

    run = write_run(tmp_path / "results" / "r", [{"trial_id": "b-x", "role": "baseline", "method": "none",
                                                  "gamma_strong": 0.0, "gamma_weak": "", "omega": 1.0,
                                                  "n_samples": 8, "seed": 0, "fd_classifier": 1.0,
                                                  "status": "complete"}], grids=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["report", str(run), "--out", str(mine), "--force"]) == 2
    assert "not an sgbench report" in capsys.readouterr().err and (mine / "notes.txt").read_text() == "keep"
    other = tmp_path / "rep"
    assert main(["report", str(run), "--out", str(other)]) == 0
    assert main(["report", str(run), "--out", str(other)]) == 0  # its own report: replaced
