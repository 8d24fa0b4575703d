"""Built-in searchers; each registers under the ``nas_lab.searchers`` entry-point group."""
