"""``nas-lab precompute``: zero-cost proxy values of a space's archs into their on-disk cache, in parallel;
``correlate`` takes the same settings and computes what it misses the same way."""

from __future__ import annotations

from nas_lab.cli.common import add_command, interruptible
from nas_lab.core import registry
from nas_lab.core.config import check_seed
from nas_lab.core.errors import UserError, shorten
from nas_lab.core.registry import Param

HELP = """\
Compute zero-cost proxy values into the on-disk cache before a zero-shot study, in parallel;
values already cached are skipped, so an interrupted precompute resumes when run again.

Settings (key=value):
  space=hyvitas proxies=a,b        required: the proxies, e.g. naswot,synflow (`nas-lab list proxy`)
  sample=N seed=0                  N random archs drawn with seed (default: the whole space)
  resolution=PX batch_size=N      input side and batch (default: the space's, e.g. 64 px and 64); seed fixes weights too
  device=cpu|cuda                  where models run
  workers=N executor=local|ray executor.address=auto   parallelism (default: every core)
  cache=PATH                       cache file (default $NAS_LAB_CACHE/zero_cost.sqlite, else ~/.cache/nas_lab/)

examples:
  nas-lab precompute space=hyvitas proxies=naswot,snip,synflow,jacob_cov,params,logsynflow
  nas-lab precompute space=nb201 proxies=naswot sample=1000 workers=8
"""

#: settings of `nas-lab precompute` and their defaults; `correlate` adds its own
SETTINGS = {p.name: p for p in (
    Param("space", "hyvitas", str), Param("proxies", "", str), Param("sample", None, int), Param("seed", 0, int),
    Param("resolution", None, int), Param("batch_size", None, int), Param("device", "cpu", str),
    Param("workers", None, int), Param("executor", "local", str), Param("executor.address", None, str),
    Param("cache", None, str),
)}


def add_parser(sub) -> None:
    add_zero_cost_parser(sub, "precompute", "fill the zero-cost proxy cache ahead of a zero-shot study", command, HELP)


def add_zero_cost_parser(sub, name: str, blurb: str, command, description: str) -> None:
    """A command over zero-cost proxies (``precompute``, ``correlate``): ``key=value`` settings and a progress bar."""
    p = add_command(sub, name, blurb, command, description)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. space=nb201 proxies=naswot,synflow")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def command(args) -> int:
    from nas_lab.objectives.zero_cost.precompute import precompute

    _, space, proxies, indices, options = zero_cost_job(args, SETTINGS)
    with interruptible("every value computed so far is in the cache; run the same command again to finish"):
        done = precompute(space, proxies, indices, **options)
    print(done.summary())
    return 0


def _settings(overrides: list[str], known: dict[str, Param], command: str) -> dict:
    """``key=value`` overrides over the defaults of ``known``, each coerced to its type."""
    values = {name: p.default for name, p in known.items()}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"override {shorten(repr(item))} is not key=value; e.g. space=nb201 proxies=naswot,synflow")
        if key not in known:
            raise UserError(f"unknown setting {shorten(repr(key))} of `nas-lab {command}`; valid: {', '.join(known)}")
        values[key] = known[key].coerce(value.strip(), "")
    return values


def zero_cost_job(args, known: dict[str, Param]):
    """The space, proxies, archs and compute options shared by ``precompute`` and ``correlate``."""
    from nas_lab.objectives.zero_cost.precompute import sample_indices

    s = _settings(args.overrides, known, args.command)
    check_seed(s["seed"])
    proxies = [p.strip() for p in s["proxies"].split(",") if p.strip()]
    space = registry.create("space", s["space"], {})
    options = {k: s[k] for k in ("seed", "resolution", "batch_size", "device", "cache", "workers", "executor")}
    options.update(address=s["executor.address"], progress=not args.no_progress)
    return s, space, proxies, sample_indices(space, s["sample"], s["seed"]), options
