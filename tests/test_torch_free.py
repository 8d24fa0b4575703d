"""The tabular hot path never imports torch: spaces, tables, searchers, runs, studies, latency lookups and the
Python API (``import nas_lab`` itself imports nothing heavy)."""

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
        "LatencyTable(k.default_path(), k, {entry(n, b): [1.0] for n, b in blocks}, "
        "{'indices': ['0'], 'measured': [[17.0]]},\n"
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
    "the Python API: import nas_lab, nas_lab.run, its frames and record, a study read by load_study": (
        "import tempfile\n"
        "import nas_lab\n"
        "assert 'pandas' not in sys.modules and 'nas_lab.core' not in sys.modules, 'import nas_lab is not cheap'\n"
        "r = nas_lab.run(space='hyvitas', searcher='rea', objective='id+ood', budget=30, seed=0,\n"
        "                searcher_params={'population': 10}, constraints=['latency.rtx4090<=1.1'])\n"
        "r.history_frame(); r.front_frame(); nas_lab.RunResult.from_record(r.to_record())\n"
        "nas_lab.run(objective='id,params', searcher='random', budget=30).front_frame()\n"
        "from nas_lab.study.config import StudyConfig\n"
        "from nas_lab.study.engine import run_study\n"
        "folder = tempfile.mkdtemp()\n"
        "run_study(StudyConfig.from_dict({'name': 't', 'budget': 10, 'repeats': 2, 'objectives': ['id'],\n"
        "                                 'searchers': {'random': {}}}, {}), folder, workers=1)\n"
        "nas_lab.load_study(folder); nas_lab.load_study(folder, history=True)\n"
    ),
}


@pytest.mark.parametrize("what", SNIPPETS)
def test_stays_torch_free(what):
    code = "import sys\n" + SNIPPETS[what] + "assert 'torch' not in sys.modules, 'torch was imported'\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
