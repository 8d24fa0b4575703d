"""Built-in search spaces; each registers under the ``nas_lab.spaces`` entry-point group."""
