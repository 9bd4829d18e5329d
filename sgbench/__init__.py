"""sgbench: benchmark and evaluation harness for Sparse Guidance of token-sparse DiTs.

Pipeline layout: models -> guidance/sampling -> metrics -> search -> run -> report.
"""

__version__ = "0.1.0"
