"""nas_lab's searchers offered to other tools: an Optuna sampler (``integrations.optuna``) and a Ray Tune searcher
(``integrations.ray_tune``). Importing this package imports neither tool; each module imports its own."""
