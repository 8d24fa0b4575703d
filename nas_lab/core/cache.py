"""Where nas_lab's on-disk caches live: one folder, holding the zero-cost proxy values (``zero_cost.sqlite``),
the latency look-up tables (``latency/``) and the trained supernets (``supernets/``).

It is ``$NAS_LAB_CACHE`` if set, else ``$XDG_CACHE_HOME/nas_lab``, else
``~/.cache/nas_lab``; study workers and Ray actors find the same caches there.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that names the cache folder
ENV_DIR = "NAS_LAB_CACHE"


def cache_root() -> Path:
    """The folder of nas_lab's caches (absolute; it may not exist yet)."""
    folder = os.environ.get(ENV_DIR) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nas_lab"
    return Path(folder).expanduser().resolve()
