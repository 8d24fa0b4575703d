#!/usr/bin/env bash
# Makes the example figures of docs/how-to/plots.md (docs/img/plot_*.png) from small NAS-Bench-201 studies and runs
# on the real table. Run from the repository root: bash docs/img/make_plots.sh TABLE_DIR
# TABLE_DIR holds nats_bench.csv and HELP's latency files (e.g. ../shared/data). About a minute on one core.
set -euo pipefail
TABLE=${1:?usage: bash docs/img/make_plots.sh TABLE_DIR (a folder holding nats_bench.csv and the HELP latencies)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export OMP_NUM_THREADS=1
nas() { python -m nas_lab.cli.main "$@"; }

# a multi-objective study: fronts (2 and 3 targets) and hypervolume curves
nas study experiments/nb201_mo.yaml budget=100 repeats=4 searchers=random,nsga2 table="$TABLE" out="$WORK/mo" \
  workers=1 --no-progress > /dev/null
# a single-objective study: anytime curves and decision importance
nas study experiments/nb201.yaml budget=100 repeats=5 searchers=random,rea objectives=test.cifar10 table="$TABLE" \
  out="$WORK/so" workers=1 --no-progress > /dev/null
nas plot "$WORK/so" kind=importance out="$WORK/importance.png" dpi=100 > /dev/null
# single runs: one target, two targets
nas run space=nb201 table="$TABLE" objective=test.cifar10 searcher=rea budget=100 seed=1 --out "$WORK/runs" > /dev/null
nas run space=nb201 table="$TABLE" objective=test.cifar10,latency.pixel3 searcher=nsga2 budget=150 seed=1 \
  --out "$WORK/runs" > /dev/null
nas plot "$WORK"/runs/nb201_rea_*.json out="$WORK/run_one.png" dpi=100 > /dev/null
nas plot "$WORK"/runs/nb201_nsga2_*.json out="$WORK/run_two.png" dpi=100 > /dev/null

# copy into docs/img as 128-colour PNGs (each well under 150 KB)
python - "$WORK" <<'PY'
import sys
from pathlib import Path
from PIL import Image

work, out = Path(sys.argv[1]), Path("docs/img")
figures = {"plot_fronts_2.png": "mo/fronts_1.png", "plot_fronts_3.png": "mo/fronts_2.png",
           "plot_hypervolume.png": "mo/hypervolume.png", "plot_anytime.png": "so/anytime.png",
           "plot_importance.png": "importance.png", "plot_run_one.png": "run_one.png", "plot_run_two.png": "run_two.png"}
for name, source in figures.items():
    image = Image.open(work / source).convert("RGB")
    if image.width > 1400:  # the report writes 150 dpi; docs pages need less
        image = image.resize((1400, round(image.height * 1400 / image.width)), Image.LANCZOS)
    image.quantize(128).save(out / name, optimize=True)
    print(f"{out / name}: {(out / name).stat().st_size // 1024} KB")
PY
