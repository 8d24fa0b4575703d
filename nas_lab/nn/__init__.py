"""Torch building blocks shared by the spaces' models and supernets.

This layer imports torch; nothing under ``nas_lab.core`` or the tabular path may
import it.
"""
