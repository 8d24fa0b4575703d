"""nas_lab: a framework for neural architecture search research.

Searchers run against interchangeable objectives over pluggable spaces; see
``nas_lab.core.runner.run`` for the one Python entry point.
"""

__version__ = "0.1.0"
