"""``TrainingLog``: the CSV a training writes always (its header growing as new scalars appear, appended to on
resume) and the TensorBoard event files it writes when ``tensorboard`` is installed, read back with TensorBoard's
own ``EventAccumulator``."""

import math

import pandas as pd
import pytest

from nas_lab.core.errors import UserError
from nas_lab.oneshot.logs import CSV_NAME, TrainingLog, tensorboard_available


def _log_a_training(folder, tensorboard=False):
    """What the training loop reports: loss, lr and images/s per step, a validation accuracy per epoch."""
    with TrainingLog(folder, tensorboard=tensorboard) as log:
        for step in (1, 2):
            log.scalars(step, {"loss": 2.5 / step, "lr": 0.1, "images_per_s": 100.0 * step})
        log.scalars(2, {"val_accuracy": 41.5})
        log.scalars(3, {"loss": math.nan, "lr": 0.05, "images_per_s": 300.0, "epoch": 2})
    return log


def test_csv_rows_hold_every_scalar_and_the_header_grows(tmp_path):
    log = _log_a_training(tmp_path / "log")
    frame = pd.read_csv(tmp_path / "log" / CSV_NAME)
    assert list(frame.columns) == ["step", "loss", "lr", "images_per_s", "val_accuracy", "epoch"]
    assert frame["step"].tolist() == [1, 2, 2, 3]
    assert frame["loss"].tolist()[:2] == [2.5, 1.25] and math.isnan(frame["loss"][3])  # a diverged loss is kept
    assert frame["val_accuracy"].isna().tolist() == [True, True, False, True] and frame["val_accuracy"][2] == 41.5
    assert frame["epoch"].tolist()[3] == 2 and frame["images_per_s"].tolist()[3] == 300.0
    assert not log.tensorboard


def test_a_resumed_training_appends_under_the_same_header(tmp_path):
    _log_a_training(tmp_path)
    with TrainingLog(tmp_path, tensorboard=False) as log:
        log.scalars(4, {"loss": 0.5, "grad_norm": 1.0})
    frame = pd.read_csv(tmp_path / CSV_NAME)
    assert frame["step"].tolist() == [1, 2, 2, 3, 4] and frame["loss"].tolist()[-1] == 0.5
    assert list(frame.columns)[-1] == "grad_norm" and frame["grad_norm"].notna().sum() == 1


def test_an_unwritable_folder_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the training log"):
        TrainingLog(blocker / "log", tensorboard=False)


@pytest.mark.skipif(not tensorboard_available(), reason="the tensorboard extra is not installed")
def test_tensorboard_events_hold_the_same_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = _log_a_training(tmp_path, tensorboard=None)  # None: whenever the package is there
    assert log.tensorboard
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"loss", "lr", "images_per_s", "val_accuracy", "epoch"}
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == [1, 2, 3]
    assert loss[0].value == pytest.approx(2.5, rel=1e-6)  # float32 in the event file: 1e-6 relative
    assert math.isnan(loss[2].value)
    assert [(e.step, e.value) for e in events.Scalars("val_accuracy")] == [(2, pytest.approx(41.5))]


def test_asking_for_tensorboard_without_the_package_says_how_to_install_it(tmp_path, monkeypatch):
    from nas_lab.oneshot import logs

    monkeypatch.setattr(logs, "tensorboard_available", lambda: False)
    with pytest.raises(UserError, match=r"nas-lab\[tensorboard\]"):
        logs.TrainingLog(tmp_path, tensorboard=True)
    with logs.TrainingLog(tmp_path) as log:  # the default falls back to the CSV alone
        log.scalars(1, {"loss": 1.0})
    assert not log.tensorboard and (tmp_path / CSV_NAME).exists()
