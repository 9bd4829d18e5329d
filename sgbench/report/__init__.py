"""Reports of run directories (tables, figures, one HTML page) and the regression gate.

Public API:
    build_report(run_dirs, out_dir=None, *, force=False) -> Path   (report directory)
    compare_runs(new, base, tolerances, k=2.0) -> CheckResult      (sgbench check)
"""

from sgbench.report.build import build_report, default_out_dir

__all__ = ["build_report", "default_out_dir"]
