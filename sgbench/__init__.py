"""sgbench: benchmark and evaluation harness for Sparse Guidance of token-sparse DiTs.

Pipeline layout: models -> guidance/sampling -> metrics -> search -> run -> report.
"""

__version__ = "0.1.0"  # the one place the version is defined (pyproject.toml reads it)
DISTRIBUTION = "sparse-guidance-bench"  # the pip name; PyPI's `sgbench` is an unrelated project


def version() -> str:
    """The installed distribution's version, or __version__ when running from a plain checkout."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return __version__
