"""hyvitas-sim against the statistics HyViTas-Bench publishes (seed 000, sections IV-A, IV-C, appendices A-B)."""

import time

import numpy as np
import pytest
from scipy.stats import kendalltau

from nas_lab.core.errors import UserError
from nas_lab.core.space import Decision, Space, option_values
from nas_lab.objectives.tabular.hyvitas_sim import CORRUPTIONS, DEVICE_PROFILES, DEVICES, build_table, generate


def tau(a, b) -> float:
    return kendalltau(a, b)[0]


@pytest.fixture(scope="module")
def sim(space):
    table = build_table(space)
    c = table.columns
    archs = space.all_archs()
    v = option_values(space, archs, space.names)
    ood = {"sketch": c["ood.sketch"].mean(axis=1), "stylized": c["ood.stylized"].mean(axis=1)}
    for s in (1, 5):
        ood[f"c{s}"] = np.mean([c[f"ood.c.{k}.{s}"].mean(axis=1) for k in CORRUPTIONS], axis=0)
    return dict(
        table=table, c=c, id=c["id.top1"].mean(axis=1), std=c["id.top1"].std(axis=1, ddof=1), ood=ood,
        params=c["params"],
        bottleneck=(v["stage1.dim"] == 16) & (v["conv.expansion"] == 1) & (v["conv.kernel"] == 3),
    )


def test_it_is_marked_simulated_and_covers_the_real_space(space, sim):
    table = sim["table"]
    assert table.simulated and "simulated" in table.description
    assert (table.name, table.space, table.n_seeds, len(table)) == ("hyvitas-sim", "hyvitas", 3, 6561)
    archs = space.all_archs()
    np.testing.assert_array_equal(sim["c"]["params"], space.params(archs))
    np.testing.assert_array_equal(sim["c"]["flops"], space.flops(archs))


def test_generation_is_deterministic_and_cached(space, sim):
    start = time.perf_counter()
    again = generate(space)
    print(f"hyvitas-sim generated in {time.perf_counter() - start:.3f} s")
    assert again.columns.keys() == sim["c"].keys()
    for key, col in sim["c"].items():
        np.testing.assert_array_equal(again.columns[key], col, err_msg=key)
    assert build_table(space) is sim["table"]
    assert not sim["c"]["id.top1"].flags.writeable  # the shared cached copy cannot be corrupted


def test_only_the_hyvitas_space_has_it():
    class Other(Space):
        name = "other"
        decisions = (Decision("a", (1, 2), "size"),)

    with pytest.raises(UserError, match="defined over space 'hyvitas' only, not 'other'"):
        build_table(Other())


def test_id_accuracy_distribution(sim):
    acc, params = sim["id"], sim["params"]
    assert acc.mean() == pytest.approx(68.60, abs=0.3)
    best = int(np.argmax(acc))
    assert acc[best] == pytest.approx(73.66, abs=0.05)
    assert 2.7e6 <= params[best] <= 3.1e6 and params[best] < params.max()  # not the largest model
    assert np.mean((acc >= 60) & (acc <= 74)) >= 0.90


def test_low_performers_are_rare_bottleneck_archs_that_train_badly(sim):
    acc, std, bottleneck = sim["id"], sim["std"], sim["bottleneck"]
    low = acc < 50
    assert 0 < low.mean() < 0.01
    assert bottleneck[low].all()
    assert acc[low].min() >= 40 and acc[low].max() <= 47
    attempts = sim["c"]["train.attempts"]
    assert attempts.min() >= 3 and (attempts[low] > 3).all()
    assert np.mean(attempts[~low] > 3) < 0.05  # most archs converge 3 times in 3 attempts
    assert np.median(std[low]) > 3 * np.median(std[~low])


def test_seed_spread_is_small_for_most_archs_with_a_noisy_minority(sim):
    std = sim["std"]
    assert 0.15 <= np.median(std) <= 0.25
    assert 0.02 <= np.mean(std > 0.6) <= 0.2


@pytest.mark.parametrize("name, target", [("sketch", 0.68), ("stylized", 0.25), ("c1", 0.57), ("c5", 0.09)])
def test_kendall_tau_between_id_and_ood_matches_fig5(sim, name, target):
    assert tau(sim["id"], sim["ood"][name]) == pytest.approx(target, abs=0.05)


def test_size_predicts_heavy_shifts_better_than_id(sim):
    by_size = tau(sim["params"], sim["id"])
    assert tau(sim["params"], sim["ood"]["c5"]) > by_size + 0.03
    assert tau(sim["params"], sim["ood"]["stylized"]) > by_size + 0.03


def test_ood_levels_are_plausible_and_decrease_with_severity(sim):
    ood, c = sim["ood"], sim["c"]
    assert 20 <= ood["sketch"].mean() <= 30 and 8 <= ood["stylized"].mean() <= 15
    assert 55 <= ood["c1"].mean() <= 60 and 20 <= ood["c5"].mean() <= 25
    means = np.array([[c[f"ood.c.{k}.{s}"].mean() for s in range(1, 6)] for k in CORRUPTIONS])
    assert (np.diff(means, axis=1) < 0).all()
    assert np.ptp(means[:, 2]) > 20  # corruption types differ (brightness is mild, noise harsh)
    for key, col in c.items():
        if key.startswith(("id.", "ood.")):
            assert np.isfinite(col).all() and (col > 0).all() and (col < 100).all(), key
    assert (c["id.top5"] > c["id.top1"]).all()
    # the best arch for each OoD dataset is not the best ID arch (Fig. 5)
    assert all(np.argmax(o) != np.argmax(sim["id"]) for o in ood.values())


def test_training_hours_form_three_clusters_not_explained_by_size(sim):
    hours, params = sim["c"]["train.hours"], sim["params"]
    assert hours.mean() == pytest.approx(16, abs=1)
    clusters = [hours < 20, (hours >= 20) & (hours < 38), hours >= 38]
    assert [h.mean() for h in (hours[m] for m in clusters)] == pytest.approx([10, 30, 44], abs=1.5)
    assert clusters[0].mean() > 0.7 and clusters[2].mean() < clusters[1].mean()
    assert hours.max() <= 50  # "up to 47 hours, excluding outliers"
    assert not ((hours > 12) & (hours < 25)).any() and not ((hours > 35) & (hours < 38)).any()
    for m in clusters:  # each cluster spans small and large models alike
        assert params[m].min() < 1.1e6 and params[m].max() > 3.5e6
    assert tau(hours, params) < 0.4


def test_latency_profiles(space, sim):
    c = sim["c"]
    assert len(DEVICES) == len(set(DEVICES)) == 19
    assert {"orin_nano", "agx_orin", "rpi5", "rtx4090", "rtx5090", "a100", "h100"} <= set(DEVICES)
    assert {d.kind for d in DEVICE_PROFILES} == {"edge", "cpu", "consumer-gpu", "server-gpu"}
    lat = {d: c[f"latency.{d}"] for d in DEVICES}
    assert all((x > 0).all() for x in lat.values())
    # batch 1: consumer RTX 5090/4090 beat server A100/H100 (appendix A)
    assert max(lat["rtx5090"].mean(), lat["rtx4090"].mean()) < min(lat["a100"].mean(), lat["h100"].mean())
    assert lat["rpi5"].mean() > 5 * lat["i9_13900k"].mean() > 5 * lat["rtx4090"].mean()
    # CPUs are compute-bound, so their latency follows FLOPs; GPUs are launch-bound and nearly flat
    assert tau(lat["i9_13900k"], c["flops"]) > 0.8
    assert np.ptp(lat["rtx4090"]) / lat["rtx4090"].mean() < np.ptp(lat["rpi5"]) / lat["rpi5"].mean()
