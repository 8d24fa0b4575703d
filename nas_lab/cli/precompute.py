"""``nas-lab precompute``: zero-cost proxy values of a space's archs into their on-disk cache, in parallel;
``correlate`` takes the same settings and computes what it misses the same way."""

from __future__ import annotations

from nas_lab.cli.common import add_command, interruptible
from nas_lab.core import registry
from nas_lab.core.parallel import ADDRESS, EXECUTOR, WORKERS
from nas_lab.core.settings import Setting, help_text, read_overrides

#: most archs a sample may hold: every proxy value is a row of the cache, and a draw from a space too large to list
#: holds its indices in memory (NB201 has 15,625 archs, HyViTas 6,561)
MAX_SAMPLE = 1_000_000
#: settings of `nas-lab precompute`; `correlate` adds its own
SETTINGS = {s.name: s for s in (
    Setting("space", str, "hyvitas", help="the space whose archs are scored"),
    Setting("proxies", str, (), many=True, help="the proxies, e.g. naswot,synflow (`nas-lab list proxy`); required"),
    Setting("sample", int, None, ge=1, le=MAX_SAMPLE, help="random archs drawn with seed (none: the whole space)"),
    Setting("seed", int, 0, ge=0, le=2**32 - 1, help="seed of the sample, the initial weights and the input batch"),
    Setting("resolution", int, None, ge=1, le=4096, help="input side in px (none: the space's)"),
    Setting("batch_size", int, None, ge=1, le=4096, help="input batch of the proxies (none: the space's, else 64)"),
    Setting("device", str, "cpu", help="where models run: cpu, cuda or cuda:N"),
    WORKERS, EXECUTOR, ADDRESS,
    Setting("cache", str, None, help="cache file (none: $NAS_LAB_CACHE/zero_cost.sqlite, else ~/.cache/nas_lab/)"),
)}

HELP = f"""\
Compute zero-cost proxy values into the on-disk cache before a zero-shot study, in parallel;
values already cached are skipped, so an interrupted precompute resumes when run again.

Settings (key=value):
{help_text(SETTINGS)}

examples:
  nas-lab precompute space=hyvitas proxies=naswot,snip,synflow,jacob_cov,params,logsynflow
  nas-lab precompute space=nb201 proxies=naswot sample=1000 workers=8
"""


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


def zero_cost_job(args, known: dict[str, Setting]):
    """The space, proxies, archs and compute options shared by ``precompute`` and ``correlate``."""
    from nas_lab.objectives.zero_cost.precompute import sample_indices

    s, _ = read_overrides(known, args.overrides, args.command)
    proxies = list(s["proxies"])
    space = registry.create("space", s["space"], {})
    options = {k: s[k] for k in ("seed", "resolution", "batch_size", "device", "cache", "workers", "executor")}
    options.update(address=s["executor.address"], progress=not args.no_progress)
    return s, space, proxies, sample_indices(space, s["sample"], s["seed"]), options
