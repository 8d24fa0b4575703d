"""What the tabular run path costs on the real NB201 table: a whole `nas-lab run` in a fresh process.

Issue 11 (part 4): reading the 3 MB NATS-Bench CSV with pandas cost 0.28 s and about
50 MB of an 85 MB peak; the table is now read with the csv module and pandas is not
imported on this path. Prints, as medians over fresh processes, the wall time and
peak RSS of (a) `nas-lab run space=nb201 ... budget=100` and (b) the table read alone,
beside (c) what importing pandas and `pandas.read_csv` of the same file costs (the
reference the old reader paid on top of the rest), when pandas is installed.

    python benchmarks/bench_nb201_load.py [--data ../shared/data] [--repeats 5]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from results_page import add_docs_flag, recorded

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

PROBE = """
import json, resource, sys, time
t = time.perf_counter()
{body}
print(json.dumps({{"seconds": time.perf_counter() - t, "pandas": "pandas" in sys.modules,
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

CASES = {
    "nas-lab run space=nb201 searcher=rea budget=100": (
        "import contextlib, io\nfrom nas_lab.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['run', 'space=nb201', 'table={data}', 'objective=test.cifar10', 'searcher=rea', "
        "'budget=100', '--no-save']) == 0"
    ),
    "table read alone (nats.read)": (
        "from nas_lab.objectives.tabular.nats import read\nfrom nas_lab.spaces.nb201 import NB201Space\n"
        "read('{data}', NB201Space())"
    ),
    "reference: import pandas + pandas.read_csv": (
        "import pandas\npandas.read_csv('{data}/nats_bench.csv')"
    ),
}


def measure(body: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", PROBE.format(body=body)], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(out.stderr)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"seconds": statistics.median(r["seconds"] for r in runs),
            "rss_mib": statistics.median(r["rss_mib"] for r in runs), "pandas": runs[0]["pandas"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.environ.get("NAS_LAB_DATA", str(DEFAULT_DATA)),
                        help="folder holding nats_bench.csv (default: ../shared/data or $NAS_LAB_DATA)")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per case (median shown)")
    add_docs_flag(parser)
    args = parser.parse_args()
    with recorded(args, "nb201-load", "The tabular run path on real NB201 data",
                  "A whole nas-lab run on the NB201 table in a fresh process."):
        data = Path(args.data).resolve()
        if not (data / "nats_bench.csv").is_file():
            raise SystemExit(f"no nats_bench.csv in {data}; pass --data DIR")  # nothing measured: no page
        print(f"{'case':<50} {'seconds':>8} {'peak RSS MiB':>13}  pandas imported")
        for name, body in CASES.items():
            if name.startswith("reference"):
                try:
                    import pandas  # noqa: F401
                except ImportError:
                    continue
            m = measure(body.format(data=data), args.repeats)
            print(f"{name:<50} {m['seconds']:>8.3f} {m['rss_mib']:>13.1f}  {'yes' if m['pandas'] else 'no'}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
