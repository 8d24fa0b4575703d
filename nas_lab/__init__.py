"""nas_lab: a framework for neural architecture search research.

Searchers run against interchangeable objectives over pluggable spaces. In Python: ``nas_lab.run(...)`` makes
one search (``nas_lab.api``), ``nas_lab.load_study(path)`` reads a study as a pandas frame, and
``nas_lab.RunResult`` is what a run found; ``nas_lab.core.runner.run`` is the entry point under them all.
They are imported on first use, so ``import nas_lab`` stays cheap.
"""

__version__ = "0.1.0"
__all__ = ["run", "load_study", "RunResult"]


def __getattr__(name: str):
    if name in ("run", "load_study"):
        from nas_lab import api

        return getattr(api, name)
    if name == "RunResult":
        from nas_lab.core.results import RunResult

        return RunResult
    raise AttributeError(f"module 'nas_lab' has no attribute {name!r}")
