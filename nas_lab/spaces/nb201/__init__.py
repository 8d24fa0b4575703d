"""The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), indexed as NB201/NATS-Bench."""

from nas_lab.spaces.nb201.space import NB201Space

__all__ = ["NB201Space"]
