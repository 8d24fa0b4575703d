"""Study folders under stress: a second writer, a damaged line in runs.jsonl, SIGTERM/SIGINT to a running study,
and Ctrl-C during `nas-lab run` — each ends in one sentence, keeps what finished, and the same command completes."""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from nas_lab.cli.main import main
from nas_lab.study.store import DAMAGED_FILE, FolderLock, Store, key_of

REPO = Path(__file__).resolve().parents[1]
SMALL = {
    "name": "small",
    "budget": 20,
    "repeats": 3,
    "seed": 4,
    "objectives": ["id"],
    "searchers": {"random": {}, "rea": {"population": 10, "tournament": 3}},
}


def study(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nas_lab.cli.main", "study", str(config), f"out={out}", "--no-progress", *extra]


def small_config(tmp_path: Path) -> Path:
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    return config


def found(directory: Path) -> dict:
    """What each run found, keyed by run, without timings."""
    return {key_of(r): (r.best_index, r.history["index"].tolist()) for r in Store(directory).records()}


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` of a child that is sent SIGINT: Ctrl-C reaches a foreground process with SIGINT at its default,
    but a child inherits an ignored SIGINT (the suite started in the background by a non-interactive shell, as
    with ``&`` or nohup), and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def one_sentence(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """Pids of the live child processes of ``pid``, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# -- one writer per study folder ------------------------------------------------------------------


def test_a_study_folder_in_use_is_refused_naming_the_holder_then_free_again(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    holder = FolderLock(out).acquire()
    try:
        code = main(["study", str(config), f"out={out}", "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2 and one_sentence(err), err
        assert f"is in use by process {os.getpid()} on host {socket.gethostname()}" in err
        assert not (out / "runs.jsonl").exists()
    finally:
        holder.release()
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    assert len(found(out)) == 6
    with FolderLock(out):  # `report` only reads: it works while a study holds the folder
        assert main(["report", str(out)]) == 0


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    code = (f"from nas_lab.study.store import FolderLock; FolderLock({str(out)!r}).acquire(); "
            "print('locked', flush=True); import time; time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "locked"
        assert main(["study", str(config), f"out={out}", "--no-progress"]) == 2
        assert f"in use by process {proc.pid} on host" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert (out / "study.lock").read_text().startswith(f"{proc.pid} ")  # left behind, naming a dead process
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    assert len(found(out)) == 6


# -- damaged lines in runs.jsonl --------------------------------------------------------------------


def test_damaged_lines_are_skipped_and_counted_by_report_and_resume_reruns_their_runs(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    complete = found(out)
    runs = out / "runs.jsonl"
    lines = runs.read_bytes().split(b"\n")[:-1]
    assert len(lines) == 6
    lost = json.loads(lines[2])["config"]["study"]["key"]
    damaged = [b"", b"   ", lines[2][: len(lines[2]) // 2], b"\xff\xfe not utf-8", b"[1, 2]"]
    runs.write_bytes(b"\n".join(lines[:2] + damaged + lines[3:]) + b"\n")
    capsys.readouterr()

    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 5 damaged line(s)" in captured.err and "Traceback" not in captured.err
    assert found(out) == {k: v for k, v in complete.items() if k != lost}

    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "1 runs now, 5 already recorded" in captured.out
    assert "5 damaged line(s)" in captured.err and DAMAGED_FILE in captured.err
    assert found(out) == complete  # the rerun finds what the lost run found
    assert [json.loads(line)["config"]["study"]["key"] for line in runs.read_text().splitlines()].count(lost) == 1
    assert (out / DAMAGED_FILE).read_bytes() == b"\n".join(damaged) + b"\n"
    assert main(["report", str(out)]) == 0
    assert "damaged" not in capsys.readouterr().err


# -- SIGTERM and SIGINT to a running study -------------------------------------------------------------


@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signalled_study_stops_its_workers_keeps_what_finished_and_the_same_command_completes(
        tmp_path, sig, status):
    out = tmp_path / "out"
    cmd = study(REPO / "experiments" / "hyvitas_table4.yaml", out, "searchers=bananas", "repeats=20", "budget=30",
                "workers=2")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            preexec_fn=sigint_as_at_a_terminal)
    runs = out / "runs.jsonl"
    try:
        # signalled at once: a fast machine finishes the rest within two seconds of the first record (a second
        # writer's refusal is tested with a lock held for as long as the test needs, above)
        assert wait_for(lambda: runs.exists() and runs.read_bytes().count(b"\n") >= 1, 60), "no run was recorded"
        workers = children(proc.pid)
        os.kill(proc.pid, sig)
        assert len(workers) >= 2, workers  # the pool's two workers (and its resource tracker, if any)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert one_sentence(err) and "interrupted; finished runs are kept" in err and "run the same command again" in err
    assert wait_for(lambda: not any(alive(pid) for pid in workers), 5), [p for p in workers if alive(p)]

    kept = [json.loads(line) for line in runs.read_text().splitlines()]  # every recorded line parses
    assert 1 <= len(kept) < 40
    finished = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"{40 - len(kept)} runs now, {len(kept)} already recorded, 40 in all" in finished.stdout
    keys = [json.loads(line)["config"]["study"]["key"] for line in runs.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 40


# -- Ctrl-C during `nas-lab run` ------------------------------------------------------------------------


def test_ctrl_c_during_a_one_shot_run_is_one_sentence_and_exit_130(tmp_path):
    cmd = [sys.executable, "-m", "nas_lab.cli.main", "run", "searcher=darts", "searcher.epochs=50",
           "searcher.batch_size=16", "--out", str(tmp_path)]
    # training has started once it shows its bar
    err, out = signalled_once_shown(cmd, b"DARTS bilevel search", signal.SIGINT, 130, cwd=REPO,
                                    preexec_fn=sigint_as_at_a_terminal)
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith("nas-lab: interrupted;") and "nothing was recorded" in last
    assert out == b"" and not list(tmp_path.iterdir())


def signalled_once_shown(cmd: list[str], shown: bytes, sig: int, status: int, **popen) -> tuple[str, bytes]:
    """Run ``cmd``, send it ``sig`` once its stderr shows ``shown`` and assert it exits with ``status``; its stderr
    and stdout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    err = b""
    try:
        os.set_blocking(proc.stderr.fileno(), False)
        deadline = time.monotonic() + 120
        while shown not in err and time.monotonic() < deadline and proc.poll() is None:
            err += proc.stderr.read() or b""
            time.sleep(0.05)
        assert shown in err, err
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=20) == status
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    os.set_blocking(proc.stderr.fileno(), True)
    return (err + proc.stderr.read()).decode(errors="replace"), proc.stdout.read()


def _retyped(line: bytes, path: tuple, value) -> bytes:
    """The record of ``line`` with the field at ``path`` set to ``value`` (deleted for ``...``)."""
    record = json.loads(line)
    field = record
    for key in path[:-1]:
        field = field[key]
    if value is ...:
        del field[path[-1]]
    else:
        field[path[-1]] = value
    return json.dumps(record).encode()


def test_records_with_fields_of_the_wrong_type_are_damaged_lines_counted_by_report_and_run_again(tmp_path, capsys):
    """A string where a metric should be, a missing key, a list where an object is: each crashed `report` and every
    later rerun of the study; now each is a damaged line."""
    config, out = small_config(tmp_path), tmp_path / "out"
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    complete = found(out)
    runs = out / "runs.jsonl"
    lines = runs.read_bytes().split(b"\n")[:-1]
    changes = [(("best", "metrics", "id"), "72.5"), (("metrics", "id", "max"), [1]), (("incumbents",), ...),
               (("metrics",), []), (("config", "study", "label"), ["random"]), (("incumbents", "metrics", "id"), "a")]
    retyped = [_retyped(line, path, value) for line, (path, value) in zip(lines, changes)]
    runs.write_bytes(b"\n".join(retyped) + b"\n")
    capsys.readouterr()

    assert main(["report", str(out)]) == 2  # every run is damaged: nothing to report, one sentence
    captured = capsys.readouterr()
    assert one_sentence(captured.err) and "has no finished runs yet" in captured.err, captured.err
    runs.write_bytes(b"\n".join(retyped[:2] + lines[2:]) + b"\n")
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 damaged line(s)" in captured.err and "Traceback" not in captured.err

    runs.write_bytes(b"\n".join(retyped) + b"\n")
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "6 runs now, 0 already recorded" in captured.out and "6 damaged line(s)" in captured.err
    assert found(out) == complete
    assert (out / DAMAGED_FILE).read_bytes() == b"\n".join(retyped) + b"\n"
    assert main(["report", str(out)]) == 0
    assert "damaged" not in capsys.readouterr().err


# -- full and read-only disks ------------------------------------------------------------------------


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the disk is read-only")])
@pytest.mark.parametrize("torn", ["plot", "table"])
def test_a_full_or_read_only_disk_while_reporting_leaves_every_previous_file_and_says_so(
        tmp_path, capsys, monkeypatch, code, words, torn):
    from matplotlib.figure import Figure

    config, out = small_config(tmp_path), tmp_path / "out"
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    savefig, write_bytes = Figure.savefig, Path.write_bytes

    def half_then_fail(write, target, content, *args, **kwargs):
        write(target, content[: len(content) // 2] if isinstance(content, bytes) else content, *args, **kwargs)
        raise OSError(code, os.strerror(code))

    if torn == "plot":  # the disk fills up in the middle of the second plot file
        calls = []

        def failing_savefig(fig, target, *args, **kwargs):
            calls.append(target)
            if len(calls) == 2:
                Path(target).write_bytes(b"%PDF-1.4 torn")
                raise OSError(code, os.strerror(code))
            return savefig(fig, target, *args, **kwargs)

        monkeypatch.setattr(Figure, "savefig", failing_savefig)
    else:  # ... or in the middle of report.csv
        monkeypatch.setattr(Path, "write_bytes", lambda p, data: half_then_fail(write_bytes, p, data) if
                            p.name.startswith(".report.csv") else write_bytes(p, data))
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and f"cannot write the report of {out}: {words}" in err, err
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after.keys() == before.keys()  # no temporary file left
    kept = ["report.md", "report.csv", "report.tex", "runs.jsonl", "study.yaml"] + ["anytime.pdf"] * (torn == "plot")
    assert all(after[name] == before[name] for name in kept)  # (a plot written whole before the failure is new)
    monkeypatch.undo()
    assert main(["report", str(out)]) == 0


# -- unreadable configs and stores; refused commands leave nothing behind --------------------------------


def test_unreadable_configs_and_stores_are_one_sentence(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x01 not text")
    assert main(["study", str(binary), f"out={out}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "is not a text file" in err, err
    assert not out.exists()

    blocked = tmp_path / "blocked"
    (blocked / "runs.jsonl").mkdir(parents=True)  # a folder where the records go
    assert main(["study", str(config), f"out={blocked}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and f"{blocked / 'runs.jsonl'} is not a file" in err, err
    assert [p.name for p in blocked.iterdir()] == ["runs.jsonl"]  # no lock, no study.yaml left behind

    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    capsys.readouterr()
    (out / "study.yaml").write_bytes(b"\x00\xff binary")
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "is not a text file" in err, err
    (out / "study.yaml").unlink()
    (out / "study.yaml").mkdir()
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and "study.yaml is a folder, not a YAML file" in err, err


def test_a_study_leaves_no_lock_file_behind_whether_it_ran_or_was_refused(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    assert not (out / "study.lock").exists()
    holder = FolderLock(out).acquire()
    try:
        assert main(["study", str(config), f"out={out}", "--no-progress"]) == 2
    finally:
        holder.release()
    assert not (out / "study.lock").exists()
    refused = tmp_path / "refused"
    assert main(["study", str(config), f"out={refused}", "budget=0", "--no-progress"]) == 2
    assert not refused.exists()
    assert "Traceback" not in capsys.readouterr().err


def test_a_lock_deleted_by_its_releasing_holder_is_taken_on_the_file_its_path_names_now(tmp_path):
    """A process that opened the lock file just before its holder released (and deleted) it must not lock the
    deleted file, or two processes would each think they hold the lock."""
    from nas_lab.core.lock import ExclusiveLock

    path = tmp_path / "x.lock"
    first = ExclusiveLock(path).acquire()
    stale = os.open(path, os.O_RDWR)  # opened by a late comer before the release
    first.release()
    assert not path.exists()
    second = ExclusiveLock(path).acquire()
    assert path.exists() and not second._still_named(stale)
    second.release()
    os.close(stale)


def test_a_disk_that_fills_up_during_a_study_keeps_the_runs_recorded_and_the_same_command_completes(
        tmp_path, capsys, monkeypatch):
    config, out = small_config(tmp_path), tmp_path / "out"
    opened = Store.open

    def filling(store):
        opened(store)
        raw, written = store._fh, []

        class Full:  # the fourth record is cut half-way by a full disk
            def write(self, text):
                written.append(text)
                if len(written) == 4:
                    raw.write(text[: len(text) // 2])
                    raw.flush()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return raw.write(text)

            def __getattr__(self, name):
                return getattr(raw, name)

        store._fh = Full()
        return store

    monkeypatch.setattr(Store, "open", filling)
    assert main(["study", str(config), f"out={out}", "--no-progress", "workers=1"]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and f"cannot record a finished run in {out / 'runs.jsonl'}: the disk is full" in err, err
    assert len(found(out)) == 3
    monkeypatch.undo()
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    assert "3 runs now, 3 already recorded" in capsys.readouterr().out
    assert len(found(out)) == 6 and not (out / DAMAGED_FILE).exists()


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "the disk is read-only")])
def test_a_run_record_that_cannot_be_written_is_named_and_leaves_no_torn_file(tmp_path, capsys, monkeypatch, code,
                                                                               words):
    write_bytes = Path.write_bytes

    def half_then_fail(path, data):
        write_bytes(path, data[: len(data) // 2])
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    out = tmp_path / "records"
    assert main(["run", "budget=5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert one_sentence(err) and f"cannot write the run record to {out}: {words}; choose another --out DIR" in err, err
    assert not list(out.iterdir())


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root writes through chmod; the monkeypatched EROFS/EACCES tests cover it")
def test_a_report_into_a_read_only_study_folder_is_one_sentence_and_leaves_every_file(tmp_path, capsys):
    config, out = small_config(tmp_path), tmp_path / "out"
    assert main(["study", str(config), f"out={out}", "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    out.chmod(0o555)
    try:
        assert main(["report", str(out)]) == 2
        err = capsys.readouterr().err
        assert one_sentence(err) and f"cannot write the report of {out}: permission denied" in err, err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    finally:
        out.chmod(0o755)
