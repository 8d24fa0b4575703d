"""Core contracts: Space, Objective/Evaluation, Searcher, Runner, registry, results. No torch here."""
