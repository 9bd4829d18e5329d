"""Noise of a setting's mean over seeds (seed spread and bootstrap errors combined) and the
paired/unpaired difference test shared by tables and `sgbench check`."""

import math

import pytest

from sgbench.report.aggregate import stat_of, summarise
from sgbench.report.gate import compare_runs, parse_tolerances
from sgbench.report.runs import load_run
from sgbench.report.significance import Difference, difference, seed_mean_se
from sgbench.report.synthetic import write_run


def test_one_seed_uses_its_bootstrap_error():
    assert seed_mean_se([4.0], [0.3]) == (4.0, pytest.approx(math.nan, nan_ok=True), 1, 0.3)
    mean, std, n, se = seed_mean_se([4.0], [math.nan])
    assert (mean, n) == (4.0, 1) and math.isnan(se) and math.isnan(std)


def test_several_seeds_take_the_larger_of_spread_and_bootstrap():
    # spread 0 over seeds (a lucky pair), bootstrap 0.4 each: the bootstrap decides
    assert seed_mean_se([2.0, 2.0], [0.4, 0.4])[3] == pytest.approx(math.sqrt(0.32) / 2)
    # seeds that disagree more than their bootstrap errors say: the spread decides
    assert seed_mean_se([1.0, 3.0], [0.1, 0.1])[3] == pytest.approx(math.sqrt(2) / math.sqrt(2))
    # a seed without its error: the spread alone
    assert seed_mean_se([1.0, 1.2, 1.4], [0.9, math.nan, 0.9])[3] == pytest.approx(0.2 / math.sqrt(3))
    # NaN values are dropped with their errors
    assert seed_mean_se([1.0, math.nan], [0.5, 0.1])[1:] == (pytest.approx(math.nan, nan_ok=True), 1, 0.5)
    assert stat_of([2.0, 2.0], [0.4, 0.4]).se == pytest.approx(math.sqrt(0.32) / 2)


def test_difference_is_paired_over_shared_seeds():
    d = difference({0: 10.0, 1: 12.0, 2: 14.0}, {0: 9.0, 1: 11.5, 2: 12.5}, 5.0, 5.0)
    assert d.paired == 3 and d.delta == pytest.approx(1.0)
    assert d.se == pytest.approx(0.5 / math.sqrt(3))  # std(1, 0.5, 1.5) / sqrt(3): the shared noise cancels
    assert d.significant(2.0) and not d.significant(4.0)
    u = difference({0: 10.0}, {0: 9.0}, 0.3, 0.4)  # one seed: unpaired, conservative
    assert (u.paired, u.se) == (0, pytest.approx(0.5)) and u.significant(1.9) and not u.significant(2.0)
    assert difference({3: 1.0}, {4: 2.0}).significant() is None  # no noise estimate
    assert math.isnan(difference({}, {0: 1.0}).delta)
    assert Difference(1.0, 0.1, 0).significant()


def _rows(values, seeds, se):
    return [{"trial_id": f"t{s}", "method": "sg", "gamma_strong": 0.5, "gamma_weak": 0.9, "omega": 3.0,
             "n_samples": 500, "seed": s, "fd_classifier": v, "fd_classifier_se": se, "status": "complete"}
            for s, v in zip(seeds, values)]


def test_summaries_carry_the_combined_error(tmp_path):
    run = load_run(write_run(tmp_path / "r", _rows([5.0, 5.0], (0, 1), 1.0), grids=False))
    stat = summarise(run.trials)[0].stats["fd_classifier"]
    assert (stat.mean, stat.std, stat.se) == (5.0, 0.0, pytest.approx(math.sqrt(2) / 2))


def test_check_uses_the_bootstrap_errors_when_seeds_agree_by_chance(tmp_path):
    """Two runs on other seeds whose two seeds each happen to agree exactly: their spread says 0,
    their bootstrap errors say 1. A difference of 1.5 is within 2 sigma of the difference."""
    base = load_run(write_run(tmp_path / "base", _rows([5.0, 5.0], (0, 1), 1.0), grids=False))
    new = load_run(write_run(tmp_path / "new", _rows([6.5, 6.5], (2, 3), 1.0), grids=False))
    res = compare_runs(new, base, parse_tolerances("fd_classifier=0.1"), k=2.0)
    c = res.comparisons[0]
    assert c.paired == 0 and c.noise == pytest.approx(2 * math.sqrt(0.5 + 0.5)) and not c.regressed
    tight = load_run(write_run(tmp_path / "tight", _rows([6.5, 6.5], (2, 3), 0.01), grids=False))
    base_tight = load_run(write_run(tmp_path / "bt", _rows([5.0, 5.0], (0, 1), 0.01), grids=False))
    assert not compare_runs(tight, base_tight, parse_tolerances("fd_classifier=0.1"), k=2.0).ok
