"""The memory allocator's policy while latencies are timed: held steady, so a model's time is its compute.

Why (measured on this project's 2-core AMD EPYC, torch 2.13, one thread): with
glibc's defaults, a model that frees and re-allocates multi-MB tensors on every
call (AutoViT's attention over 256 tokens: 1–4 MB of scores per head group)
hands the memory back to the kernel (heap trimming, ``mmap`` for large blocks)
and takes it again as fresh pages, so each call pays thousands of minor page
faults: 2,000–6,300 a call, 5–19 ms of system time on 48–78 ms models. Which
models pay, and how much, depends on the sequence of allocation sizes, so a
block timed alone and the same block inside a network differ by up to 1.5x in
ways no per-model factor corrects. A long-running inference process does not
work like that (jemalloc and tcmalloc, which PyTorch's CPU tuning guides
recommend, keep freed memory), so ``nas-lab lut build`` and ``validate`` time
with glibc's trimming and ``mmap`` switched off (``mallopt``); the page faults
then vanish and those models run in 34–48 ms. The policy is part of a table's
key; elsewhere (no glibc) the allocator is left as it is and the key says so.

Only the timing commands call ``hold_steady``: it changes the whole process's
allocator for its lifetime (freed memory is kept for reuse, not returned).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: glibc's ``mallopt`` parameters (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
#: the policy names a table key records
STEADY, SYSTEM = "glibc, freed memory kept (no trim, no mmap)", "system default"


@functools.cache
def _mallopt():
    """glibc's ``mallopt``, or None where the C library has none (macOS, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return None


def policy() -> str:
    """The policy tables are timed under on this machine (what ``hold_steady`` gives here)."""
    return STEADY if _mallopt() is not None else SYSTEM


def hold_steady() -> str:
    """Keep freed memory in the process from now on (no heap trimming, no ``mmap``); returns the policy."""
    mallopt = _mallopt()
    if mallopt is not None:
        mallopt(M_TRIM_THRESHOLD, ctypes.c_int(2**30))
        mallopt(M_MMAP_MAX, 0)
    return policy()
