"""Shards are written whole, a stopped run resumes to the output of an uninterrupted one, other runs are refused, and
N processes write what one writes."""

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from bulk_fixtures import MENTIONS, one_thread_fixture, run_bulk, tiny_fixture, tiny_folder_fixture, write_jsonl  # noqa: F401  (fixtures)

from modeling_entity_typing.bulk import BulkOptions, BulkRun, InputSpec, WindowTyper, open_source, read_predictions
from modeling_entity_typing.bulk.shards import OutputConflict


class Crash(Exception):
    """Stands for a kill in the middle of a shard."""


def crash_at_window(monkeypatch, number: int) -> None:
    original, calls = WindowTyper.__call__, itertools.count()

    def call(self, rows):
        if next(calls) == number:
            raise Crash
        return original(self, rows)

    monkeypatch.setattr(WindowTyper, "__call__", call)


def files_in(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_stopped_run_resumes_to_the_uninterrupted_output(tiny, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=5)  # 40 rows: shards of 7 rows, windows of 5
    _, uninterrupted = run_bulk(tiny, data, tmp_path / "whole", top_k=3)
    output = tmp_path / "out"
    for window in (4, 2, 0):  # crash in the middle of shard 1, then of a later shard, then at once
        crash_at_window(monkeypatch, window)
        with pytest.raises(Crash):
            run_bulk(tiny, data, output, top_k=3)
        monkeypatch.undo()
        left = files_in(output)
        assert not any(".partial-" in name for name in left), left  # nothing half written stays
        assert "predictions.jsonl" not in left
        records = [name for name in left if name.endswith(".json") and "shard-" in name]
        data_files = [name for name in left if name.endswith(".jsonl")]
        assert len(records) == len(data_files)  # every shard written whole, with its record
    manifest, resumed = run_bulk(tiny, data, output, top_k=3)
    assert resumed == uninterrupted  # row for row, scores to the last bit
    assert manifest["throughput"]["resumed"] and manifest["throughput"]["sessions"] >= 2
    assert manifest["counts"] == {"rows": 40, "typed": 40, "skipped_rows": 0, "unreadable_lines": 0, "shards": 6}
    assert files_in(output) == ["manifest.json", "predictions.jsonl"]


def test_a_shard_changed_after_it_was_written_is_caught_at_the_merge(tiny, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=3)  # 24 rows, shards of 7
    crash_at_window(monkeypatch, 4)  # after shard 0 and 1 are written
    with pytest.raises(Crash):
        run_bulk(tiny, data, tmp_path / "out")
    monkeypatch.undo()
    shard = tmp_path / "out" / "shards" / "shard-000001.jsonl"
    lines = shard.read_text().splitlines(keepends=True)
    shard.write_text("".join([lines[0], *lines]))  # a row twice
    with pytest.raises(RuntimeError, match=r"Shard 1 does not cover its input rows 7\.\.13 exactly once"):
        run_bulk(tiny, data, tmp_path / "out")
    assert not (tmp_path / "out" / "predictions.jsonl").exists()


def test_a_run_killed_while_choosing_its_fast_path_chooses_again(tiny, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=3)

    def killed(*args, **kwargs):
        raise Crash

    monkeypatch.setattr("modeling_entity_typing.bulk.runner.choose_fast_path", killed)
    with pytest.raises(Crash):
        run_bulk(tiny, data, tmp_path / "out", fast="auto", self_check_mentions=8)
    assert files_in(tmp_path / "out") == ["shards/run.json"]  # the folder is this run's from its first file
    monkeypatch.undo()
    manifest, rows = run_bulk(tiny, data, tmp_path / "out", fast="auto", self_check_mentions=8)
    assert manifest["fast_path"]["requested"] == "auto" and len(rows) == 24


def test_a_complete_run_is_not_typed_again(tiny, tmp_path, monkeypatch):
    data = write_jsonl(tmp_path / "in.jsonl")
    first, rows = run_bulk(tiny, data, tmp_path / "out")
    crash_at_window(monkeypatch, 0)  # any typing would crash
    (tmp_path / "out" / "shards").mkdir()  # what a kill while the shards were being removed leaves
    (tmp_path / "out" / "shards" / "shard-000000.jsonl").write_text("")
    again, rows_again = run_bulk(tiny, data, tmp_path / "out")
    assert again == first and rows_again == rows
    assert files_in(tmp_path / "out") == ["manifest.json", "predictions.jsonl"]


def test_another_model_options_or_input_is_refused_unless_overwrite(tiny, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl")
    run_bulk(tiny, data, tmp_path / "out", top_k=3)
    before = (tmp_path / "out" / "predictions.jsonl").read_text()
    with pytest.raises(OutputConflict, match=r"(?s)options.top_k: 3 -> 2.*--overwrite"):
        run_bulk(tiny, data, tmp_path / "out", top_k=2)
    other = write_jsonl(tmp_path / "other.jsonl", MENTIONS[:3])
    with pytest.raises(OutputConflict, match="input.files"):
        run_bulk(tiny, other, tmp_path / "out", top_k=3)
    assert (tmp_path / "out" / "predictions.jsonl").read_text() == before  # refused before anything was written
    manifest, rows = run_bulk(tiny, other, tmp_path / "out", top_k=2, overwrite=True)
    assert len(rows) == 3 and manifest["options"]["top_k"] == 2


def test_a_folder_of_other_files_or_a_file_is_refused(tiny, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputConflict, match="exists and is not empty.*--overwrite"):
        run_bulk(tiny, data, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    with pytest.raises(NotADirectoryError, match="is a file"):
        run_bulk(tiny, data, data)


class ThreadProcesses:
    """Two processes of one run, as threads: process 0's plan is handed to the other as `accelerate` would."""

    def __init__(self, rank: int, board: dict):
        self.rank, self.world, self.board = rank, 2, board

    def share(self, value):
        if self.rank == 0:
            self.board["plan"] = value
            self.board["ready"].set()
            return value
        self.board["ready"].wait(timeout=60)
        return self.board["plan"]

    def close(self):
        pass


def test_two_processes_write_what_one_writes(tiny, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=4)
    _, single = run_bulk(tiny, data, tmp_path / "one", top_k=2)
    board, results, errors = {"ready": threading.Event()}, {}, []
    options = BulkOptions(fast="fp32", batch_size=3, window_rows=5, shard_rows=7, top_k=2)

    def process(rank: int) -> None:
        import copy

        try:
            source = open_source(InputSpec((str(data),)), recover=False)
            run = BulkRun(copy.deepcopy(tiny[0]), tiny[1], source, tmp_path / "two", options,
                          processes=ThreadProcesses(rank, board))  # fmt: skip
            results[rank] = run.run()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=process, args=(rank,)) for rank in (1, 0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert list(read_predictions(tmp_path / "two")) == single
    assert results[1]["shards_typed_here"] == 2 and results[0]["counts"]["shards"] == 5
    assert results[0]["machine"]["processes"] == 2


# ------------------------------------------------------------------------------------------------ real processes
def _predict(model: str, data: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "modeling_entity_typing", "predict", "--model", model, "--input", str(data),
            "--output", str(output), "--fast", "fp32", "--top_k", "3", "--shard_rows", "50", "--window_rows", "25",
            "--batch_size", "8", "--no_progress", *extra]  # fmt: skip


ENVIRONMENT = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.mark.slow
def test_resume_after_kill_9_gives_the_uninterrupted_output(tiny_folder, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=250)  # 2,000 rows, 40 shards
    subprocess.run(_predict(tiny_folder, data, tmp_path / "whole"), check=True, env=ENVIRONMENT, capture_output=True)
    output, generator = tmp_path / "out", random.Random(0)
    kills = 0
    for _ in range(3):
        process = subprocess.Popen(_predict(tiny_folder, data, output), env=ENVIRONMENT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while not list((output / "shards").glob("shard-*.json")) and time.monotonic() < deadline:
            time.sleep(0.05)  # wait until it writes shards, then kill it at a random moment
        time.sleep(generator.uniform(0.0, 1.0))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 1
    subprocess.run(_predict(tiny_folder, data, output), check=True, env=ENVIRONMENT, capture_output=True)
    assert (output / "predictions.jsonl").read_text() == (tmp_path / "whole" / "predictions.jsonl").read_text()
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"]["typed"] == 2000 and manifest["counts"]["rows"] == 2000


@pytest.mark.slow
def test_accelerate_launch_two_processes_writes_the_single_process_output(tiny_folder, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", repeat=50)  # 400 rows, 8 shards
    subprocess.run(_predict(tiny_folder, data, tmp_path / "one"), check=True, env=ENVIRONMENT, capture_output=True)
    accelerate = Path(sys.executable).parent / "accelerate"
    command = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29531", "-m",
               *_predict(tiny_folder, data, tmp_path / "two")[2:]]  # fmt: skip
    result = subprocess.run(command, env={**ENVIRONMENT, "ACCELERATE_USE_CPU": "1"}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert manifest["machine"]["processes"] == 2
    one = [json.loads(line) for line in (tmp_path / "one" / "predictions.jsonl").read_text().splitlines()]
    two = [json.loads(line) for line in (tmp_path / "two" / "predictions.jsonl").read_text().splitlines()]
    assert [row["labels"] for row in two] == [row["labels"] for row in one]
    for a, b in zip(one, two):
        assert b["scores"] == pytest.approx(a["scores"], abs=1e-6)
