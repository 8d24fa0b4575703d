"""The ``nas-lab`` command-line interface."""
