"""The real ``nb201`` table: NATS-Bench test accuracy + HELP latency, rows matched by arch string.

Reads ../shared/data (skipped with the reason when it is absent). Figures are
those of its SOURCES.md: published optima, space means, and HW-NAS-Bench's
latencies of arch 0. Broken releases are small files written in ``tmp_path``.
"""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest

from nas_lab.core import registry
from nas_lab.core.errors import UserError
from nas_lab.objectives.tabular import nats
from nas_lab.objectives.tabular.objective import TabularObjective
from nas_lab.objectives.tabular.table import Table
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.nb201 import NB201Space

SPACE = NB201Space()
N = 15_625
ACCURACY = ("test.cifar10", "test.cifar100", "test.imagenet16")


@pytest.fixture(scope="module")
def nb201(shared_data):
    """The real table, read once for the module from the shared folder."""
    return Table.load(shared_data, SPACE)


@pytest.fixture(scope="module")
def frame(shared_data):
    return pd.read_csv(shared_data / nats.CSV_NAME)


def assert_same_columns(a: Table, b: Table):
    assert a.columns.keys() == b.columns.keys()
    for key in a.columns:
        np.testing.assert_array_equal(a.columns[key], b.columns[key], err_msg=key)


def latency_file(path, payload: bytes, member="archive/data.pkl"):
    """A PyTorch-style zip archive holding one pickle, as HELP's files are."""
    path.parent.mkdir(exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, payload)
    return path


@pytest.fixture
def release(tmp_path, shared_data):
    """A release folder with the real CSV (linked) and an empty latency folder to put broken files in."""
    (tmp_path / nats.CSV_NAME).symlink_to(shared_data / nats.CSV_NAME)
    (tmp_path / nats.LATENCY_DIR).mkdir()
    return tmp_path


# -- the real data ----------------------------------------------------------------
def test_folder_and_csv_path_give_the_same_table(nb201, shared_data):
    by_csv = Table.load(shared_data / nats.CSV_NAME, SPACE)
    assert_same_columns(nb201, by_csv)
    devices = sorted(p.stem for p in (shared_data / nats.LATENCY_DIR).glob("*.pt") if p.stem != "str_arch2idx")
    assert len(devices) == 27
    assert sorted(nb201.columns) == sorted([*ACCURACY, "params", *(f"latency.{d}" for d in devices)])
    assert (nb201.name, nb201.space, nb201.simulated, nb201.n_seeds) == ("nb201", "nb201", False, 1)
    assert "TEST accuracy" in nb201.description and "validation accuracy" in nb201.description


@pytest.mark.parametrize("column, best_index, optimum, mean", [
    ("test.cifar10", 6111, 94.37, 87.06),
    ("test.cifar100", 9930, 73.51, 61.41),
    ("test.imagenet16", 857, 47.31, 33.59),
])  # fmt: skip
def test_optima_and_means_match_the_published_figures(nb201, column, best_index, optimum, mean):
    values = nb201.column(column)
    assert round(values.max(), 2) == optimum
    assert int(values.argmax()) == best_index
    assert round(values.mean(), 2) == mean


def test_rows_are_placed_by_arch_string_not_by_row_order(nb201, frame, tmp_path):
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    table = Table.load(tmp_path / "shuffled.csv", SPACE)
    for column in ACCURACY:
        np.testing.assert_array_equal(table.column(column), nb201.column(column))
    best = SPACE.from_strings(frame["ArchitectureString"][6111])
    assert table.column("test.cifar10")[SPACE.index(best)][0] == nb201.column("test.cifar10").max()


@pytest.mark.parametrize("device, ms", [
    ("fpga", 2.57296), ("eyeriss", 3.64562), ("pixel3", 3.60585), ("raspi4", 10.481976820010459),
])  # fmt: skip
def test_latency_of_arch_0_equals_hw_nas_bench(nb201, device, ms):
    assert nb201.column(f"latency.{device}")[0] == pytest.approx(ms, rel=1e-12)


def test_latency_and_accuracy_share_the_index(nb201):
    # HELP's README pairs fpga 7.4 ms with 73.5 % on CIFAR-100: the CIFAR-100 optimum
    assert nb201.column("latency.fpga")[nb201.column("test.cifar100").argmax()] == pytest.approx(7.42, abs=0.005)


def test_params_are_the_cifar10_networks(nb201):
    np.testing.assert_array_equal(nb201.column("params"), SPACE.params(SPACE.all_archs(), num_classes=10))


def test_tabular_objective_over_the_folder(shared_data, nb201):
    objective = TabularObjective(SPACE, "test.cifar10", table=str(shared_data))
    archs = SPACE.sample(np.random.default_rng(0), 32)
    ev = objective.evaluate(archs, np.random.default_rng(0))
    idx = SPACE.index(archs)
    np.testing.assert_array_equal(ev.values[:, 0], nb201.column("test.cifar10")[idx])
    assert objective.directions == ("max",) and not objective.info()["simulated"]
    report = objective.report(archs)
    assert set(ACCURACY) | {"params"} <= set(report)
    np.testing.assert_array_equal(report["test.imagenet16"], nb201.column("test.imagenet16")[idx])
    assert [objective.label(m) for m in ACCURACY] == ["CIFAR-10 test", "CIFAR-100 test", "ImageNet16-120 test"]
    latency = TabularObjective(SPACE, "latency.pixel3", table=str(shared_data))
    assert latency.directions == ("min",)
    np.testing.assert_array_equal(latency.values(), nb201.column("latency.pixel3"))


def test_loading_does_not_import_torch(shared_data):
    code = ("import sys; from nas_lab.objectives.tabular.objective import TabularObjective; "
            "from nas_lab.spaces.nb201 import NB201Space; "
            f"TabularObjective(NB201Space(), 'latency.pixel3', table={str(shared_data)!r}); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_run_on_the_table_imports_neither_pandas_nor_torch(shared_data):
    """The tabular run path: pandas would cost more time and memory than reading the whole table."""
    code = ("import sys; from nas_lab.cli.main import main; "
            f"code = main(['run', 'space=nb201', 'table={shared_data}', 'objective=test.cifar10', 'searcher=rea', "
            "'budget=20', '--no-save']); "
            "assert code == 0; assert 'pandas' not in sys.modules, 'pandas was imported'; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# -- broken CSVs ------------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        nats.read(tmp_path / "nowhere.csv", SPACE)
    with pytest.raises(UserError, match=f"holds no {nats.CSV_NAME}"):
        Table.load(tmp_path, SPACE)


def test_missing_columns_are_named(frame, tmp_path):
    path = tmp_path / nats.CSV_NAME
    frame.drop(columns=["CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs"]).to_csv(path, index=False)
    with pytest.raises(UserError,
                       match=r"lacks the column\(s\) CIFAR100TestAccuracy200Epochs, ImageNetTestAccuracy200Epochs;"):
        Table.load(path, SPACE)
    frame.drop(columns=["ArchitectureString"]).to_csv(path, index=False)
    with pytest.raises(UserError, match=r"lacks the column\(s\) ArchitectureString; it needs CIFAR10"):
        nats.read(tmp_path, SPACE)


def test_truncated_csv_says_how_many_rows(shared_data, tmp_path):
    text = (shared_data / nats.CSV_NAME).read_text()
    path = tmp_path / nats.CSV_NAME
    path.write_text(text[: len(text) // 3])  # cut in the middle of a row
    with pytest.raises(UserError, match=r"has 5,\d\d\d data rows, fewer than the 15,625 archs"):
        Table.load(path, SPACE)


def test_unparsable_arch_string_names_its_row(frame, tmp_path):
    broken = frame.copy()
    broken.loc[41, "ArchitectureString"] = "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    broken.to_csv(tmp_path / nats.CSV_NAME, index=False)
    with pytest.raises(UserError, match=r"data row 42: .*conv_5x5.*valid ops: none, skip_connect"):
        Table.load(tmp_path, SPACE)


def test_duplicate_archs_are_refused(frame, tmp_path):
    broken = frame.copy()
    broken.loc[9, "ArchitectureString"] = frame.loc[3, "ArchitectureString"]
    broken.to_csv(tmp_path / nats.CSV_NAME, index=False)
    with pytest.raises(UserError, match=r"repeats the arch .* in data rows 4 and 10"):
        Table.load(tmp_path, SPACE)


def test_non_numeric_accuracy_is_refused(frame, tmp_path):
    broken = frame.astype({"CIFAR10TestAccuracy200Epochs": object})
    broken.loc[5, "CIFAR10TestAccuracy200Epochs"] = "n/a%"
    broken.to_csv(tmp_path / nats.CSV_NAME, index=False)
    with pytest.raises(UserError, match="cannot read .* as a NATS-Bench CSV"):
        Table.load(tmp_path, SPACE)


def test_a_native_csv_is_not_taken_for_a_release(tmp_path):
    path = tmp_path / "toy.csv"
    path.write_text("node1.in0,acc\n")
    assert not nats.recognises(path)
    assert nats.recognises(tmp_path)


def test_other_spaces_are_refused(shared_data):
    with pytest.raises(UserError, match="space 'nb201' only, not 'hyvitas'"):
        Table.load(shared_data, HyViTasSpace())


# -- broken latency files -----------------------------------------------------------
class Payload:
    """Pickles as a call of ``os.system``: loading it with plain ``pickle`` would run the command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickled_global_is_refused_without_running(release):
    marker = release / "pwned"
    latency_file(release / nats.LATENCY_DIR / "evil.pt", pickle.dumps([1.0] * 3 + [Payload(marker)], protocol=2))
    with pytest.raises(UserError, match=r"evil\.pt \(it refers to the global (posix|nt)\.system, refused"):
        Table.load(release, SPACE)
    assert not marker.exists()


@pytest.mark.parametrize("name, member, payload, message", [
    ("garbage", None, b"not a zip", r"cannot read latency file .*garbage\.pt \(File is not a zip file\)"),
    ("no_pickle", "archive/version", b"3", r"holds 0 data.pkl members"),
    ("cut_pickle", "archive/data.pkl", pickle.dumps([0.5] * N)[:1000], r"cannot read latency file .*cut_pickle\.pt"),
    ("a_dict", "archive/data.pkl", pickle.dumps({"pixel3": [0.5] * N}), r"holds a dict, not a list"),
    ("too_short", "archive/data.pkl", pickle.dumps([0.5] * 10), r"lists 10 values, not 15,625"),
    ("text", "archive/data.pkl", pickle.dumps(["0.5"] * N), r"holds values of type str"),
    ("nested", "archive/data.pkl", pickle.dumps([[0.5, 0.5]] * N), r"holds values of type list"),
    ("not_finite", "archive/data.pkl", pickle.dumps([0.5] * 7 + [float("nan")] + [0.5] * (N - 8)),
     r"non-finite value nan at index 7"),
])  # fmt: skip
def test_broken_latency_files_are_refused(release, name, member, payload, message):
    path = release / nats.LATENCY_DIR / f"{name}.pt"
    if member is None:
        path.write_bytes(payload)
    else:
        latency_file(path, payload, member)
    with pytest.raises(UserError, match=message):
        nats.read(release / nats.CSV_NAME, SPACE)


def test_a_good_latency_file_becomes_a_column(release):
    values = np.arange(N) / 8
    latency_file(release / nats.LATENCY_DIR / "mydevice.pt", pickle.dumps(values.tolist(), protocol=2))
    table = nats.read(release, SPACE)
    assert [c for c in table.columns if c.startswith("latency.")] == ["latency.mydevice"]
    np.testing.assert_array_equal(table.column("latency.mydevice"), values)


# -- default discovery ------------------------------------------------------------
@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No environment variable set, and a working directory without ``data/``."""
    monkeypatch.delenv("NAS_LAB_NB201", raising=False)
    monkeypatch.delenv("NAS_LAB_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_default_table_says_how_to_get_the_data(no_data):
    with pytest.raises(UserError,
                       match=r"no NB201 data found .*pass table=PATH.*v-tao/nats-bench-landscape.*set NAS_LAB_DATA"):
        registry.load("table", "nb201")(SPACE)
    with pytest.raises(UserError, match=r"no NB201 data found"):
        TabularObjective(SPACE, "test.cifar10")


def test_default_table_is_found_and_cached(no_data, monkeypatch, shared_data, nb201):
    monkeypatch.setenv("NAS_LAB_DATA", str(shared_data))
    table = nats.build_table(SPACE)
    assert_same_columns(table, nb201)
    assert nats.build_table(NB201Space()) is table


def test_default_search_order(no_data, monkeypatch, shared_data):
    (no_data / "data").mkdir()
    (no_data / "data" / nats.CSV_NAME).symlink_to(shared_data / nats.CSV_NAME)
    assert nats.locate() == (no_data / "data" / nats.CSV_NAME).resolve()
    monkeypatch.setenv("NAS_LAB_DATA", str(shared_data))
    assert nats.locate() == (shared_data / nats.CSV_NAME).resolve()
    monkeypatch.setenv("NAS_LAB_NB201", str(no_data / "data"))
    assert nats.locate() == (no_data / "data").resolve()
    monkeypatch.setenv("NAS_LAB_NB201", str(no_data / "missing"))
    with pytest.raises(UserError, match="NAS_LAB_NB201=.*missing does not exist"):
        nats.locate()
