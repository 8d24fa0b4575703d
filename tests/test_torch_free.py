"""The tabular hot path never imports torch: spaces, tables, searchers, runs, studies and latency lookups."""

import subprocess
import sys

import pytest

SNIPPETS = {
    "hyvitas space and closed-form cost": (
        "from nas_lab.spaces.hyvitas import HyViTasSpace\n"
        "s = HyViTasSpace(); a = s.all_archs(); s.params(a); s.flops(a)\n"
    ),
    "nb201 space, strings and canonical form": (
        "from nas_lab.spaces.nb201 import NB201Space\n"
        "s = NB201Space(); a = s.all_archs(); s.params(a); s.canonical(a); s.canonical(a, notion='function')\n"
        "s.from_strings([s.to_string(a[0])])\n"
    ),
    "searches on hyvitas-sim with every built-in searcher": (
        "from nas_lab.core.config import RunConfig, build\n"
        "from nas_lab.core.runner import run\n"
        "for name in ('random', 'rea', 'reinforce', 'bananas', 'gp'):\n"
        "    s, o, r = build(RunConfig(searcher=name, objective='id+ood', constraints=['latency.rtx4090<=1.1']))\n"
        "    run(s, o, r, budget=30, seed=0)\n"
    ),
    "latency look-up table: a table written, then a search on latency.lut and a bound on it": (
        "import os, tempfile\n"
        "os.environ['NAS_LAB_CACHE'] = tempfile.mkdtemp()\n"
        "import numpy as np\n"
        "from nas_lab.core.config import RunConfig, build\n"
        "from nas_lab.core.runner import run\n"
        "from nas_lab.objectives.latency.table import LatencyTable, TableKey, entry\n"
        "from nas_lab.spaces.hyvitas import HyViTasSpace\n"
        "s = HyViTasSpace(); k = TableKey.current(s); blocks = s.latency_blocks(k.resolution)\n"
        "LatencyTable(k.default_path(), k, {entry(n, b): [1.0] for n, b in blocks}, {'indices': ['0'], 'measured': [[17.0]]},\n"
        "             {'warmup': 0, 'repeats': 1, 'rounds': 1, 'calibrate': 1, 'seed': 0}).write()\n"
        "for cfg in (RunConfig(objective='latency'), RunConfig(objective='id,latency.lut', searcher='random'),\n"
        "            RunConfig(objective='id', constraints=['latency.lut<=17'])):\n"
        "    run(*build(cfg), budget=20, seed=0)\n"
    ),
    "a study and its store": (
        "import tempfile\n"
        "from nas_lab.study.config import StudyConfig\n"
        "from nas_lab.study.engine import run_study\n"
        "study = StudyConfig.from_dict({'name': 't', 'budget': 10, 'repeats': 2, 'objectives': ['id'],\n"
        "                               'searchers': {'rea': {}}}, {})\n"
        "run_study(study, tempfile.mkdtemp(), workers=1)\n"
    ),
}


@pytest.mark.parametrize("what", SNIPPETS)
def test_stays_torch_free(what):
    code = "import sys\n" + SNIPPETS[what] + "assert 'torch' not in sys.modules, 'torch was imported'\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
