"""The settings layer: every plug-in setting is declared (type, bounds, help), one parser reads every value, and
out-of-range values are refused through the CLI in one sentence."""

from __future__ import annotations

import pytest

from nas_lab.cli.main import main
from nas_lab.core import registry
from nas_lab.core.config import RunConfig
from nas_lab.core.errors import UserError
from nas_lab.core.settings import Setting, parse_mapping, read_yaml, split_list
from nas_lab.study.config import StudyConfig

KINDS = ("space", "objective", "searcher", "dataset")
#: the objective= of each family (its settings are read before anything is built)
FAMILY_METRIC = {"tabular": "id", "zc": "zc.naswot", "supernet": "supernet.id", "latency": "latency.lut"}


def declared_settings():
    """(kind, name, setting) of every registered plug-in."""
    return [(kind, name, s) for kind in KINDS for name in registry.names(kind)
            for s in registry.parameters(registry.load(kind, name))]


def test_every_registered_setting_has_a_type_help_and_for_numbers_both_bounds():
    found = declared_settings()
    assert len(found) > 80  # every plug-in is seen, not an empty loop
    for kind, name, s in found:
        where = f"{kind} {name}: {s.name}"
        assert s.type in (int, float, bool, str, dict), where
        assert s.help, where
        if s.type in (int, float) and s.choices is None:
            assert (s.ge if s.ge is not None else s.gt) is not None, f"{where} has no lower bound"
            assert (s.le if s.le is not None else s.lt) is not None, f"{where} has no upper bound"


def numeric_cases():
    return [pytest.param(kind, name, s.name, value, id=f"{kind}-{name}-{s.name}-{value}")
            for kind, name, s in declared_settings() if s.type in (int, float) and not s.many
            for value in ("-1e15", "1e15")]


@pytest.mark.parametrize("kind, name, setting, value", numeric_cases())
def test_out_of_range_values_are_refused_through_the_cli(capsys, kind, name, setting, value):
    pick = [f"objective={FAMILY_METRIC[name]}"] if kind == "objective" else [f"{kind}={name}"]
    assert main(["run", *pick, f"{kind}.{setting}={value}", "budget=2", "--no-save", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"{kind}.{setting} must" in err, err


def test_lists_read_alike_with_or_without_brackets():
    assert split_list("a,b") == split_list("[a,b]") == ["a", "b"]
    assert split_list("[a,b],[c]") == [["a", "b"], ["c"]]
    assert split_list("[a,b]", unwrap=False) == [["a", "b"]]
    for bad in ("a,,b", "[a", "a]", "[a]x"):
        with pytest.raises(UserError, match="is not a list"):
            split_list(bad)


def test_mappings_and_their_errors():
    assert parse_mapping("a=1,b=true,c=0.5,d=halton") == {"a": 1, "b": True, "c": 0.5, "d": "halton"}
    assert parse_mapping("{a: 1}") == {"a": 1}
    with pytest.raises(UserError, match="given twice"):
        parse_mapping("a=1,a=2")
    with pytest.raises(UserError, match="not key=value"):
        parse_mapping("a")


def test_yaml_refuses_a_key_given_twice():
    with pytest.raises(UserError, match="line 2: key 'budget' is given twice"):
        read_yaml("budget: 1\nbudget: 2\n", "study config x.yaml")
    assert read_yaml("a: {b: 1}\nc: [1, 2]\n", "x") == {"a": {"b": 1}, "c": [1, 2]}


def test_a_setting_coerces_text_and_python_values_the_same_way():
    s = Setting("n", int, 1, ge=1, le="m")
    assert s.coerce("3", "x", {"m": 5}) == s.coerce(3, "x", {"m": 5}) == s.coerce("3e0", "x") == 3
    with pytest.raises(UserError, match=r"x.n must lie in 1..2 \(m\), got 3"):
        s.coerce(3, "x", {"m": 2})
    for bad in ("2.5", True, [1], "nan"):
        with pytest.raises(UserError, match="x.n must be a whole number"):
            s.coerce(bad, "x")
    with pytest.raises(UserError, match="needs a value"):
        s.coerce("none", "x")


def test_a_choice_named_none_is_that_choice_not_a_cleared_setting(capsys):
    """``searcher.augment=none`` was refused with 'needs a value (one of auto, none, ...); it has no none'."""
    augment = Setting("augment", str, "auto", choices=("auto", "none", "deit"))
    assert augment.coerce("none", "searcher") == augment.coerce(" none ", "searcher").strip() == "none"
    assert Setting("cache", str, None).coerce("none", "x") is None  # elsewhere none still clears
    with pytest.raises(UserError, match="needs a value"):
        augment.coerce(None, "searcher")
    assert main(["run", "searcher=spos", "searcher.augment=none", "searcher.epochs=0"]) == 2
    assert "searcher.epochs must lie in" in capsys.readouterr().err  # augment=none was read; epochs=0 refused


@pytest.mark.parametrize("text", ["zc.params,params", "[zc.params,params]"])
def test_run_and_study_read_an_objective_of_several_metrics_alike(text):
    """`objective=a,b` and `objective=[a,b]` are one objective of two metrics in `run` and in `study` alike."""
    assert RunConfig().apply([f"objective={text}"]).objective == "zc.params,params"
    base = {"name": "t", "space": "nb201", "searchers": {"random": {}}, "repeats": 1, "budget": 5,
            "objectives": ["zc.params"]}
    study = StudyConfig.from_dict(base, {"objective": text})
    assert study.objectives == ["zc.params,params"]


@pytest.mark.parametrize("text", ["params<=1e6,flops<=1e9", "[params<=1e6,flops<=1e9]"])
def test_run_and_study_read_constraints_alike(text):
    assert RunConfig().apply([f"constraint={text}"]).constraints == ["params<=1e6", "flops<=1e9"]
    base = {"name": "t", "searchers": {"random": {}}, "repeats": 1, "budget": 5, "objectives": ["id"]}
    assert StudyConfig.from_dict(base, {"constraints": text}).constraints == ["params<=1e6", "flops<=1e9"]


def test_a_study_objectives_axis_keeps_brackets_as_one_objective():
    base = {"name": "t", "searchers": {"random": {}}, "repeats": 1, "budget": 5, "objectives": ["id"]}
    assert StudyConfig.from_dict(base, {"objectives": "[id,params]"}).objectives == ["id,params"]
    assert StudyConfig.from_dict(base, {"objectives": "[id,params],[ood,params]"}).objectives == ["id,params",
                                                                                                   "ood,params"]
    assert StudyConfig.from_dict(base, {"objectives": "id,ood"}).objectives == ["id", "ood"]
