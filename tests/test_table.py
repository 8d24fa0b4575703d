"""Benchmark tables: exact .npz/.csv round trips, rows matched by decision values, clear errors."""

import numpy as np
import pytest

from nas_lab.core.errors import UserError
from nas_lab.core.space import Decision, Space
from nas_lab.objectives.tabular.hyvitas_sim import build_table
from nas_lab.objectives.tabular.table import Table


class Toy(Space):
    """Six archs, with a numeric and a string decision."""

    name = "toy"
    decisions = (Decision("width", (8, 16, 32), "size"), Decision("op", ("conv", "attn"), "topology"))


TOY = Toy()
ROWS = ["8,conv", "8,attn", "16,conv", "16,attn", "32,conv", "32,attn"]  # arch-index order


def write_csv(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def toy_csv(tmp_path, rows=ROWS, name="toy.csv"):
    """Per-seed acc = index + seed / 10, latency = 10 * index; rows given as decision values."""
    body = []
    for row in rows:
        i = ROWS.index(row)
        body.append(f"{row},{i},{i + 0.1},{i + 0.2},{10 * i}")
    return write_csv(tmp_path / name, "width,op,acc.seed0,acc.seed1,acc.seed2,latency.cpu", body)


def assert_same_columns(a: Table, b: Table):
    assert a.columns.keys() == b.columns.keys()
    for key in a.columns:
        np.testing.assert_array_equal(a.columns[key], b.columns[key], err_msg=key)


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_hyvitas_sim_round_trips_exactly(space, tmp_path, suffix):
    table = build_table(space)
    path = tmp_path / f"copy{suffix}"
    table.save(path)
    loaded = Table.load(path, space)
    assert_same_columns(table, loaded)
    assert (loaded.name, loaded.space, loaded.simulated, loaded.n_seeds) == ("hyvitas-sim", "hyvitas", True, 3)
    assert "simulated" in loaded.description
    if suffix == ".npz":  # the native format keeps dtypes too
        assert all(loaded.columns[k].dtype == v.dtype for k, v in table.columns.items())


def test_rows_are_matched_by_decision_values_not_by_order(tmp_path):
    shuffled = toy_csv(tmp_path, rows=ROWS[::-1][:3] + ROWS[:3])  # same archs, other order
    table = Table.load(shuffled, TOY)
    np.testing.assert_array_equal(table.column("latency.cpu"), 10.0 * np.arange(6))
    np.testing.assert_array_equal(table.column("acc"), np.arange(6)[:, None] + [0.0, 0.1, 0.2])
    assert (table.name, table.space, table.simulated, table.n_seeds) == ("toy", "toy", False, 3)


def test_numeric_options_match_whatever_their_spelling(tmp_path):
    rows = [f"{r.replace('16,', '16.0,')},{i}" for i, r in enumerate(ROWS)]
    table = Table.load(write_csv(tmp_path / "floats.csv", "width,op,i", rows), TOY)
    np.testing.assert_array_equal(table.column("i"), np.arange(6))


def test_nan_accuracies_are_kept_in_both_formats(tmp_path):
    acc = np.arange(18, dtype=float).reshape(6, 3)
    acc[2, 1] = np.nan  # one diverged training
    table = Table(TOY, {"acc": acc, "hours": np.ones(6)}, name="nan")
    for suffix in (".npz", ".csv"):
        table.save(tmp_path / f"nan{suffix}")
        loaded = Table.load(tmp_path / f"nan{suffix}", TOY)
        assert np.isnan(loaded.column("acc")[2, 1]) and np.isnan(loaded.column("acc")).sum() == 1
        assert_same_columns(table, loaded)


def test_empty_csv_cells_read_as_nan(tmp_path):
    # one empty cell, a run of two, and an empty last cell
    rows = ["8,conv,0,0,0", "8,attn,1,1,1", "16,conv,2,,2", "16,attn,3,3,3", "32,conv,,,4", "32,attn,5,5,"]
    table = Table.load(write_csv(tmp_path / "gaps.csv", "width,op,a,b,c", rows), TOY)
    nan = np.nan
    np.testing.assert_array_equal(table.column("a"), [0, 1, 2, 3, nan, 5])
    np.testing.assert_array_equal(table.column("b"), [0, 1, nan, 3, nan, 5])
    np.testing.assert_array_equal(table.column("c"), [0, 1, 2, 3, 4, nan])


def test_column_names_the_closest_and_the_valid_columns(space):
    with pytest.raises(UserError, match=r"no column 'id\.top'; did you mean 'id\.top\d'\? valid: id\.top1, id\.top5, "
                                        r".*ood\.c\.\*.*latency\.\*"):
        build_table(space).column("id.top")


def bad(tmp_path, header, rows):
    return write_csv(tmp_path / "bad.csv", header, rows)


def raw(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "absent.csv", r"absent\.csv does not exist; give the path of a \.npz or \.csv table"),
    (lambda p: p / "table.json", r"unsupported suffix '\.json'; valid: \.npz, \.csv"),
    (lambda p: raw(p / "t.npz", b"not a zip archive"), r"cannot read .*t\.npz as a \.npz table"),
    (lambda p: raw(p / "t.npz", b"PK\x03\x04 truncated"), r"cannot read .*t\.npz as a \.npz table"),
    (lambda p: bad(p, "width,op,acc", ["8,conv,1", "8,attn"]), r"cannot read .*bad\.csv as a \.csv table"),
    (lambda p: bad(p, "width,op,acc", ["8,conv,1", "8,attn,high"]),
     r"cannot read .*bad\.csv as a \.csv table \(.*high"),
    (lambda p: bad(p, "width,acc", ["8,1"]),
     r"no column for decision 'op'; space 'toy' needs the decision columns width, op"),
    (lambda p: bad(p, "width,op,acc", [f"{r},1" for r in ROWS[:5]] + ["12,attn,1"]),
     r"value '12' of decision 'width' \(data row 6\) is not an option; valid: 8, 16, 32"),
    (lambda p: bad(p, "width,op,acc", [f"{r},1" for r in ROWS[:5]] + ["32,mlp,1"]),
     r"value 'mlp' of decision 'op' \(data row 6\) is not an option; valid: conv, attn"),
    (lambda p: bad(p, "width,op,acc", [f"{r},1" for r in ROWS] + ["16,attn,2"]),
     r"2 rows for the arch \{'width': 16, 'op': 'attn'\} \(1 archs repeated in all\)"),
    (lambda p: bad(p, "width,op,acc", [f"{r},1" for r in ROWS[:4]]),
     r"lacks 2 of the 6 archs of space 'toy' \(first missing: \{'width': 32, 'op': 'conv'\}\)"),
    (lambda p: bad(p, "width,op,a.seed0,a.seed1,a.seed2,b.seed0,b.seed1", [f"{r},1,1,1,1,1" for r in ROWS]),
     r"disagree on the number of seeds \(b has 2, a has 3\)"),
    (lambda p: bad(p, "width,op,a.seed0,a.seed2", [f"{r},1,1" for r in ROWS]),
     r"per-seed columns a\.seed0, a\.seed2; expected a\.seed0 to a\.seed1 without gaps"),
    (lambda p: bad(p, "width,op,a,a", [f"{r},1,1" for r in ROWS]), r"repeats column 'a'"),
    (lambda p: bad(p, "", []), r"cannot read .*bad\.csv as a \.csv table \(it has no header row"),
    (lambda p: bad(p, "width,op,acc", []), r"cannot read .*bad\.csv as a \.csv table \(it has a header but no data"),
])
def test_bad_files_raise_one_clear_user_error(tmp_path, make, message):
    with pytest.raises(UserError, match=message):
        Table.load(make(tmp_path), TOY)


def test_bad_npz_tables(tmp_path):
    values = {"arch.width": np.array([8, 8, 16, 16, 32, 32]), "arch.op": np.array(["conv", "attn"] * 3)}
    np.savez(tmp_path / "seeds.npz", **values, a=np.ones((6, 3)), b=np.ones((6, 2)))
    with pytest.raises(UserError, match=r"disagree on the number of seeds"):
        Table.load(tmp_path / "seeds.npz", TOY)
    np.savez(tmp_path / "short.npz", **values, a=np.ones(5))
    with pytest.raises(UserError, match=r"column 'a' of table .* has 5 rows, but its decision columns have 6"):
        Table.load(tmp_path / "short.npz", TOY)
    np.savez(tmp_path / "dup.npz", **{**values, "arch.op": np.array(["conv"] * 6)}, a=np.ones(6))
    with pytest.raises(UserError, match=r"2 rows for the arch \{'width': 8, 'op': 'conv'\} \(3 archs repeated"):
        Table.load(tmp_path / "dup.npz", TOY)
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")
    with pytest.raises(UserError, match=r"cannot read .* \(it holds a single array"):
        Table.load(tmp_path / "single.npz", TOY)


def test_a_table_for_another_space_is_refused(space, tmp_path):
    Table(TOY, {"a": np.ones(6)}, name="toy").save(tmp_path / "toy.npz")
    with pytest.raises(UserError, match=r"is for space 'toy', not 'hyvitas'"):
        Table.load(tmp_path / "toy.npz", space)


def test_bad_columns_and_save_suffix(tmp_path):
    with pytest.raises(UserError, match=r"column 'a' of table 'x' has shape \(5,\); expected \(6,\) or \(6, seeds\)"):
        Table(TOY, {"a": np.ones(5)}, name="x")
    with pytest.raises(UserError, match=r"unsupported suffix '\.parquet'; valid: \.npz, \.csv"):
        Table(TOY, {"a": np.ones(6)}, name="x").save(tmp_path / "x.parquet")
