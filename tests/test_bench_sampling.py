"""benchmarks/bench_sampling.py decides its targets from paired per-repeat ratios: their
quartiles, and met / not met / undecided against a target."""

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sampling.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_sampling", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_ratios_are_paired_within_a_repeat(bench):
    """A load step that slows both configurations of a repeat alike cancels in the paired ratio
    (unpaired medians would mix repeats: 3.0 / 2.0 here)."""
    ours = [1.05, 2.10, 1.05, 3.15, 1.05]
    bare = [1.00, 2.00, 1.00, 3.00, 1.00]
    assert bench.paired(ours, bare) == pytest.approx([1.05, 1.05, 1.05])
    assert bench.paired([1.0, 2.0, 3.0, 4.0, 5.0], [1.0] * 5) == pytest.approx([2.0, 3.0, 4.0])
    assert bench.paired([2.0], [1.0]) == [2.0, 2.0, 2.0]


@pytest.mark.parametrize("q, target, higher, expected", [
    ([0.01, 0.02, 0.03], 0.05, False, "met"),
    ([0.06, 0.07, 0.09], 0.05, False, "not met"),
    ([0.03, 0.04, 0.06], 0.05, False, "undecided"),
    ([0.91, 0.93, 0.95], 0.90, True, "met"),
    ([0.80, 0.85, 0.88], 0.90, True, "not met"),
    ([0.88, 0.91, 0.93], 0.90, True, "undecided"),
])
def test_a_target_is_decided_by_the_quartiles(bench, q, target, higher, expected):
    assert bench.verdict(q, target, higher).split(" (")[0] == expected
