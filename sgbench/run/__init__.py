"""`sgbench run`: the pipeline runner (run directory, env snapshot, trials, progress, report).

    from sgbench.run import run_suite
    result = run_suite("suites/quickstart.yaml", out="results", resume=False, name=None)
    result.run_dir, result.exit_code  # 0 done, 1 a trial failed, 3 trials left

Modules: main (wiring), pipeline (the trial loop), stages (the Stages protocol and its
class-conditional implementation), flops (GFLOPs of a guided sampler, shared with `sgbench flops`),
rundir + env (results/<run>/, torchrun rendezvous), signals (SIGINT/SIGTERM), progress (bar + ETA).
A trial's setting is a `sgbench.guidance.GuidanceConfig`.
"""

from __future__ import annotations


def __getattr__(name):  # lazy: `import sgbench.run` must not import torch or optuna
    if name == "run_suite":
        from sgbench.run.main import run_suite

        return run_suite
    raise AttributeError(f"module 'sgbench.run' has no attribute {name!r}")


__all__ = ["run_suite"]
