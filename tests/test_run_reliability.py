"""Training runs that survive kills, bad folders and damaged checkpoints (issue #12, items 1-4 and 11; issue #26,
items 4, 5 and 6b: kills during rotation, resumes with other arguments, a full disk).

A kill is simulated in-process by raising from the model's forward (or from inside a checkpoint save): what it
leaves on disk is what `kill -9` at that moment leaves, since nothing runs after it. One slow test kills for real.
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState
from accelerate.utils import DistributedType
from safetensors import SafetensorError
from safetensors.torch import load_file
from test_examples import (  # noqa: F401 (fixtures: fresh_accelerate_state is autouse, fet_files the data)
    EXAMPLES,
    fet_args,
    fet_files,
    fresh_accelerate_state,
    load_script,
)
from test_examples_crossc import contrastive_args, crossc_checkpoint, examples_file  # noqa: F401 (fixtures)
from tiny import FET_ROWS, make_tiny_model, write_mentions

from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.training import checkpoint_problem
from modeling_entity_typing.training import checkpoints as checkpoints_module


finetune_fet = load_script("finetune_fet")
pretrain_ufet = load_script("pretrain_ufet")
pretrain_contrastive = load_script("pretrain_contrastive")
ROOT = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """Stands for `kill -9`: a BaseException, so no `except Exception` in the code under test can swallow it."""


def reset_accelerate() -> None:
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def dropout_checkpoint(tmp_path_factory, tiny_tokenizer):
    """A tiny FiveFine model WITH dropout (BERT's 0.1): resumed runs only match if every random draw is replayed."""
    path = tmp_path_factory.mktemp("tiny-dropout")
    model = make_tiny_model(tiny_tokenizer)
    assert model.config.hidden_dropout_prob > 0 and model.config.attention_probs_dropout_prob > 0
    model.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def files(fet_files):  # noqa: F811 (the imported fixture, by name)
    return fet_files


def kill_at_training_forward(monkeypatch, number: int) -> None:
    """Die at the `number`-th training forward pass (1-based), i.e. while optimizer step `number` is running."""
    original = BertForPhraseTypeTyping.forward
    calls = {"training": 0}

    def forward(self, *args, **kwargs):
        if self.training:
            calls["training"] += 1
            if calls["training"] == number:
                raise Killed(f"killed during step {number}")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BertForPhraseTypeTyping, "forward", forward)


def run_until_killed(main, run: list[str], step: int) -> None:
    """`main(run)` until it dies during training step `step` (the kill stands in for `kill -9`)."""
    with pytest.MonkeyPatch.context() as patch:
        kill_at_training_forward(patch, step)
        with pytest.raises(Killed):
            main(run)


def checkpoint_names(output_dir: Path) -> list[str]:
    return sorted(path.name for path in (output_dir / "checkpoints").iterdir())


def assert_same_weights(left: Path, right: Path) -> None:
    ours, theirs = load_file(left / "model.safetensors"), load_file(right / "model.safetensors")
    assert set(ours) == set(theirs)
    different = [name for name in ours if not torch.equal(ours[name], theirs[name])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def straight_run(dropout_checkpoint, files, tmp_path_factory):
    """8 uninterrupted steps (4 batches per epoch), the reference every interrupted-and-resumed run must equal."""
    reset_accelerate()
    output_dir = tmp_path_factory.mktemp("straight")
    summary = finetune_fet.main(fet_args(dropout_checkpoint, files, output_dir))
    reset_accelerate()
    return output_dir, summary


# ------------------------------------------------------------------------------------------- item 4: exact resume
def test_resume_after_a_kill_is_bit_identical(dropout_checkpoint, files, straight_run, tmp_path):
    """Killed during step 5, past the step-3 checkpoint (mid-epoch), resumed with `latest`: bit-identical."""
    straight_dir, straight = straight_run
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "3")
    run_until_killed(finetune_fet.main, run, 5)
    reset_accelerate()
    resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert resumed["history"] == straight["history"]
    assert resumed["best_step"] == straight["best_step"]
    assert resumed["test_macro_f1"] == straight["test_macro_f1"]
    assert_same_weights(tmp_path, straight_dir)


def ufet_args(checkpoint: str, data: Path, output_dir: Path, *extra: str) -> list[str]:
    """A 6-step `pretrain_ufet` run on FET_ROWS with their finest labels as types (files written into `data`)."""
    train, types = data / "ufet-train.jsonl", data / "types.txt"
    if not train.exists():
        write_mentions(train, [(text, mention, [label.split("/")[-1] for label in labels])
                               for text, mention, labels in FET_ROWS])  # fmt: skip
        types.write_text("person\nauthor\nlocation\ncity\norganization\ncompany\nsports_team\n")
    return [
        "--model_name_or_path", checkpoint, "--train_file", str(train), "--validation_file", str(train),
        "--types_file", str(types), "--output_dir", str(output_dir), "--per_device_train_batch_size", "4",
        "--max_steps", "6", "--eval_steps", "2", "--nwp_interval", "2", "--learning_rate", "1e-3", *extra,
    ]  # fmt: skip


def test_pretrain_ufet_resume_is_bit_identical(dropout_checkpoint, tmp_path):
    """MLM corruption and the NWP side of each mention are random too, and collated one batch ahead of training."""
    straight = pretrain_ufet.main(ufet_args(dropout_checkpoint, tmp_path, tmp_path / "straight"))
    reset_accelerate()
    run = ufet_args(dropout_checkpoint, tmp_path, tmp_path / "run", "--checkpointing_steps", "3")
    run_until_killed(pretrain_ufet.main, run, 5)
    reset_accelerate()
    resumed = pretrain_ufet.main([*run, "--resume_from_checkpoint", "latest"])
    assert resumed["history"] == straight["history"]
    assert_same_weights(tmp_path / "run", tmp_path / "straight")


@pytest.fixture(scope="module")
def checkpointed_run(dropout_checkpoint, files, tmp_path_factory):
    """A run killed during step 6 that left complete checkpoints after steps 2 and 4."""
    output_dir = tmp_path_factory.mktemp("checkpointed")
    run = fet_args(dropout_checkpoint, files, output_dir, "--checkpointing_steps", "2")
    reset_accelerate()
    run_until_killed(finetune_fet.main, run, 6)
    reset_accelerate()
    return output_dir, run


def copy_run(checkpointed_run, tmp_path) -> tuple[Path, list[str], list[Path]]:
    """A private copy of the killed run: its folder, its arguments there, and its checkpoints, oldest first."""
    source, run = checkpointed_run
    target = tmp_path / "run"
    shutil.copytree(source, target)
    run = [str(target) if argument == str(source) else argument for argument in run]
    checkpoints = sorted((target / "checkpoints").iterdir(), key=lambda path: int(path.name.split("_")[-1]))
    assert len(checkpoints) == 2, checkpoints
    return target, run, checkpoints


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


DAMAGES = {
    "missing random states": ("random_states_0.pkl", lambda path: path.unlink()),
    "missing model": ("model.safetensors", lambda path: path.unlink()),
    "truncated model": ("model.safetensors", _truncate),
    "garbage model header": ("model.safetensors", lambda path: path.write_bytes(b"\xff" * 64)),
    "truncated optimizer": ("optimizer.bin", _truncate),
    "broken training state": ("training_state.json", lambda path: path.write_text('{"step": 4,')),
    "empty scheduler": ("scheduler.bin", lambda path: path.write_bytes(b"")),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_checkpoint_fails_with_one_clear_error(checkpointed_run, tmp_path, damage):
    output_dir, run, (earlier, newest) = copy_run(checkpointed_run, tmp_path)
    name, spoil = DAMAGES[damage]
    spoil(newest / name)
    with pytest.raises(ValueError) as error:
        finetune_fet.main([*run, "--resume_from_checkpoint", str(newest)])
    message = str(error.value)
    assert str(newest) in message and name in message, message
    assert f"--resume_from_checkpoint {earlier}" in message, message  # the fix: the intact earlier checkpoint


def test_latest_skips_damaged_and_unfinished_checkpoints(checkpointed_run, straight_run, tmp_path, caplog):
    straight_dir, straight = straight_run
    output_dir, run, (earlier, newest) = copy_run(checkpointed_run, tmp_path)
    (newest / "random_states_0.pkl").unlink()
    (output_dir / "checkpoints" / "checkpoint_9").mkdir()  # the empty folder a kill left before atomic saves
    with caplog.at_level("WARNING"):
        resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    warnings = caplog.text
    assert "checkpoint_9" in warnings and str(newest.name) in warnings and "random_states_0.pkl" in warnings
    assert resumed["history"] == straight["history"]  # resumed from the intact step-2 checkpoint, exactly
    assert_same_weights(output_dir, straight_dir)


def test_latest_without_a_complete_checkpoint_says_so(checkpointed_run, tmp_path):
    output_dir, run, checkpoints = copy_run(checkpointed_run, tmp_path)
    for checkpoint in checkpoints:
        (checkpoint / "optimizer.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint.*--overwrite_output_dir"):
        finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])


# ----------------------------------------------------------------------------- item 1: a kill during a save
def test_kill_during_a_checkpoint_save_leaves_the_earlier_one_to_resume(
    dropout_checkpoint, files, straight_run, tmp_path, monkeypatch, caplog
):
    """The issue's run (8 steps, eval and checkpoint every 2) killed while writing its second checkpoint."""
    straight_dir, straight = straight_run
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2")
    original = Accelerator.save_state
    saves = []

    def save_state_killed_halfway(self, *args, **kwargs):
        location = original(self, *args, **kwargs)
        saves.append(location)
        if len(saves) == 2:  # the weights are half written when the kill lands
            _truncate(Path(location) / "model.safetensors")
            raise Killed("killed while saving")
        return location

    with monkeypatch.context() as patch:
        patch.setattr(Accelerator, "save_state", save_state_killed_halfway)
        with pytest.raises(Killed):
            finetune_fet.main(run)
    complete = [name for name in checkpoint_names(tmp_path) if name.startswith("checkpoint_")]
    assert complete == ["checkpoint_2"], checkpoint_names(tmp_path)  # the half-written one never got its name
    reset_accelerate()
    with caplog.at_level("WARNING"):
        resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert "unfinished" in caplog.text  # the leftover of the killed save is reported, not silently used
    assert resumed["history"] == straight["history"] and resumed["steps"] == 8
    assert_same_weights(tmp_path, straight_dir)
    assert (tmp_path / "all_results.json").is_file()
    assert checkpoint_names(tmp_path) == ["checkpoint_2", "checkpoint_8"]  # limit 2: the resumed one is kept


def test_rotation_never_deletes_the_checkpoint_being_resumed(dropout_checkpoint, files, tmp_path):
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2", "--checkpoints_total_limit", "1")
    run_until_killed(finetune_fet.main, run, 3)
    assert checkpoint_names(tmp_path) == ["checkpoint_2"]
    reset_accelerate()
    finetune_fet.main([*run, "--resume_from_checkpoint", str(tmp_path / "checkpoints" / "checkpoint_2")])
    assert checkpoint_names(tmp_path) == ["checkpoint_2", "checkpoint_8"]


def test_resuming_before_newer_checkpoints_needs_overwrite(checkpointed_run, straight_run, tmp_path):
    """Resuming from step 2 while step 4 exists would replay over it: say so; --overwrite_output_dir discards it."""
    straight_dir, straight = straight_run
    output_dir, run, (earlier, newest) = copy_run(checkpointed_run, tmp_path)
    with pytest.raises(FileExistsError, match=r"checkpoint_4.*--overwrite_output_dir"):
        finetune_fet.main([*run, "--resume_from_checkpoint", str(earlier)])
    assert newest.is_dir()
    reset_accelerate()
    resumed = finetune_fet.main([*run, "--resume_from_checkpoint", str(earlier), "--overwrite_output_dir"])
    assert resumed["history"] == straight["history"]
    assert_same_weights(output_dir, straight_dir)


# ------------------------------------------------------------------------------- item 2: re-using output_dir
def _no_data_loading(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the output folder was checked")

    monkeypatch.setattr(finetune_fet, "load_split", refuse)


def test_new_run_refuses_a_folder_with_another_runs_checkpoints(checkpointed_run, tmp_path, monkeypatch):
    output_dir, run, checkpoints = copy_run(checkpointed_run, tmp_path)
    before = {path: path.stat().st_mtime_ns for path in output_dir.rglob("*")}
    _no_data_loading(monkeypatch)
    with pytest.raises(FileExistsError) as error:
        finetune_fet.main(run)
    message = str(error.value)
    for expected in (str(output_dir), "checkpoint_2", "checkpoint_4", "--overwrite_output_dir",
                     "--resume_from_checkpoint latest"):  # fmt: skip
        assert expected in message, message
    assert {path: path.stat().st_mtime_ns for path in output_dir.rglob("*")} == before  # nothing touched


def test_rerun_into_a_finished_folder_keeps_its_results(
    straight_run, dropout_checkpoint, files, tmp_path, monkeypatch
):
    straight_dir, _ = straight_run
    shutil.copytree(straight_dir, tmp_path / "done")
    weights, results = (tmp_path / "done" / name for name in ("model.safetensors", "all_results.json"))
    saved = weights.read_bytes(), results.read_bytes()
    _no_data_loading(monkeypatch)
    with pytest.raises(FileExistsError, match=r"model\.safetensors.*all_results\.json"):
        finetune_fet.main(fet_args(dropout_checkpoint, files, tmp_path / "done", "--learning_rate", "1e-2"))
    assert (weights.read_bytes(), results.read_bytes()) == saved


def test_overwrite_output_dir_replaces_the_previous_run(checkpointed_run, straight_run, tmp_path):
    straight_dir, straight = straight_run
    output_dir, run, checkpoints = copy_run(checkpointed_run, tmp_path)
    summary = finetune_fet.main([*run[: run.index("--checkpointing_steps")], "--overwrite_output_dir"])
    assert not (output_dir / "checkpoints").exists()  # the old run's checkpoints can no longer be taken for ours
    assert summary["history"] == straight["history"]
    assert_same_weights(output_dir, straight_dir)


def test_make_demo_can_run_twice():
    """`make demo` writes to outputs/demo every time: the second run must replace the first, not be refused."""
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    assert "examples/finetune_fet.py --output_dir outputs/demo" in recipe and "--overwrite_output_dir" in recipe


# ----------------------------------------------------------------------------- item 3: an unusable output_dir
def test_output_dir_under_a_file_fails_before_training(dropout_checkpoint, files, tmp_path, monkeypatch):
    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    _no_data_loading(monkeypatch)
    with pytest.raises(NotADirectoryError, match=r"--output_dir .*results\.txt.* is a file"):
        finetune_fet.main(fet_args(dropout_checkpoint, files, blocker / "run"))
    assert blocker.read_text() == "not a folder"


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot write into: a mode-0o500 folder, or for root (who ignores modes) sysfs."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without sysfs: no folder here refuses root's writes")
        return Path("/sys/kernel")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


def test_read_only_output_dir_fails_before_training(dropout_checkpoint, files, tmp_path, monkeypatch):
    locked = _unwritable_folder(tmp_path)
    _no_data_loading(monkeypatch)
    with pytest.raises(PermissionError, match=rf"--output_dir .*{locked.name}.* not writable"):
        finetune_fet.main(fet_args(dropout_checkpoint, files, locked / "run"))


# ------------------------------------------------------------------------ item 11: --model_name_or_path paths
@pytest.mark.parametrize("script", ["finetune_fet", "pretrain_ufet", "pretrain_contrastive"])
@pytest.mark.parametrize("value", ["/nope/model", "./nope", "../nope/model", "{tmp}/missing", "{tmp}/a/b/c"])
def test_missing_local_model_path_fails_at_parse_time(script, value, files, tmp_path):
    value = value.format(tmp=tmp_path)
    module = {"finetune_fet": finetune_fet, "pretrain_ufet": pretrain_ufet,
              "pretrain_contrastive": pretrain_contrastive}[script]  # fmt: skip
    types = tmp_path / "types.txt"
    types.write_text("person\n")
    required = {
        "finetune_fet": [],
        "pretrain_ufet": ["--train_file", files["train"], "--validation_file", files["dev"], "--types_file",
                          str(types)],
        "pretrain_contrastive": ["--train_file", files["train"]],
    }[script]  # fmt: skip
    with pytest.raises(FileNotFoundError, match=r"--model_name_or_path .*does not exist"):
        module.parse_args([*required, "--model_name_or_path", value, "--output_dir", str(tmp_path / "out")])


@pytest.mark.parametrize("value", ["bert-base-cased", "google-bert/bert-base-cased"])
def test_hub_model_names_are_still_accepted(value, tmp_path):
    args, _ = finetune_fet.parse_args(["--model_name_or_path", value, "--output_dir", str(tmp_path / "out")])
    assert args.model_name_or_path == value


def test_a_relative_path_whose_first_folder_exists_is_a_local_path(tmp_path, monkeypatch):
    (tmp_path / "outputs").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"--model_name_or_path outputs/ufet does not exist"):
        finetune_fet.parse_args(["--model_name_or_path", "outputs/ufet", "--output_dir", "out"])


# ------------------------------------------------------------------ issue #26, item 4: a kill during rotation
ONE_PROCESS = SimpleNamespace(num_processes=1, distributed_type=DistributedType.NO)  # what checkpoint_problem reads


def incomplete_checkpoints(output_dir: Path) -> dict[str, str]:
    """Everything under checkpoints/ that is not a complete `checkpoint_<step>`, with what is wrong with it."""
    found = {}
    for path in (output_dir / "checkpoints").iterdir():
        problem = checkpoint_problem(path, ONE_PROCESS) if path.name.startswith("checkpoint_") else "a leftover"
        if problem:
            found[path.name] = problem
    return found


def kill_while_deleting(patch: pytest.MonkeyPatch, victim: str) -> None:
    """Die inside `shutil.rmtree` of the checkpoint `victim` (under whatever name it is deleted) or of the folder
    holding it, two of its files gone."""
    original = shutil.rmtree

    def rmtree(path, *args, **kwargs):
        path = Path(path)
        doomed = path if path.name.endswith(victim) else path / victim
        if doomed.is_dir():
            for file in sorted(doomed.iterdir())[:2]:
                file.unlink()
            raise Killed(f"killed while deleting {doomed}")
        return original(path, *args, **kwargs)

    patch.setattr(shutil, "rmtree", rmtree)


def test_kill_during_rotation_leaves_no_partial_checkpoint(dropout_checkpoint, files, straight_run, tmp_path, caplog):
    """Killed while rotation (limit 2) deletes checkpoint_2, checkpoint_6 just saved: no `checkpoint_<step>` is left
    partial; the leftover is reported and removed by the resumed run, which is exact."""
    straight_dir, straight = straight_run
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2")
    with pytest.MonkeyPatch.context() as patch:
        kill_while_deleting(patch, "checkpoint_2")
        with pytest.raises(Killed):
            finetune_fet.main(run)
    assert incomplete_checkpoints(tmp_path) == {"deleting-checkpoint_2": "a leftover"}
    reset_accelerate()
    with caplog.at_level("WARNING"):
        resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert "skipped" in caplog.text and "Deleting" in caplog.text and "deleting-checkpoint_2" in caplog.text
    assert resumed["history"] == straight["history"]
    assert_same_weights(tmp_path, straight_dir)
    assert incomplete_checkpoints(tmp_path) == {}
    assert checkpoint_names(tmp_path) == ["checkpoint_6", "checkpoint_8"]


def test_kill_while_overwrite_output_dir_deletes_the_old_run(checkpointed_run, tmp_path):
    """--overwrite_output_dir deletes the old run's checkpoints as rotation does, each renamed first: a kill leaves
    no partial `checkpoint_<step>`, and the next --overwrite_output_dir run clears what it left."""
    output_dir, run, checkpoints = copy_run(checkpointed_run, tmp_path)
    fresh = [*run[: run.index("--checkpointing_steps")], "--overwrite_output_dir"]
    with pytest.MonkeyPatch.context() as patch:
        kill_while_deleting(patch, "checkpoint_2")
        with pytest.raises(Killed):
            finetune_fet.main(fresh)
    left = incomplete_checkpoints(output_dir)
    assert not [name for name in left if name.startswith("checkpoint_")], left
    reset_accelerate()
    finetune_fet.main(fresh)
    assert not (output_dir / "checkpoints").exists()


def _leftover_of_deletion(checkpoint: Path) -> Path:
    leftover = checkpoint.rename(checkpoint.with_name(f"deleting-{checkpoint.name}"))
    (leftover / "model.safetensors").unlink()
    return leftover


def _leftover_of_save(checkpoint: Path) -> Path:
    return checkpoint.rename(checkpoint.with_name(f"unfinished-{checkpoint.name}"))


def _partial_checkpoint(checkpoint: Path) -> Path:
    """What rotation left before it renamed first: `checkpoint_4` without some files, its training state among them."""
    for name in ("training_state.json", "optimizer.bin"):
        (checkpoint / name).unlink()
    return checkpoint


FOLDERS_THAT_ARE_NOT_CHECKPOINTS = {
    "leftover of a deletion": (_leftover_of_deletion, ["deletion", "interrupted", "not a checkpoint"]),
    "leftover of a save": (_leftover_of_save, ["save that was interrupted", "not a checkpoint"]),
    "partial checkpoint": (_partial_checkpoint, ["training_state.json, optimizer.bin are missing", "part of"]),
}


@pytest.mark.parametrize("kind", sorted(FOLDERS_THAT_ARE_NOT_CHECKPOINTS))
def test_resuming_a_leftover_by_name_says_what_it_is(checkpointed_run, tmp_path, kind):
    output_dir, run, (earlier, newest) = copy_run(checkpointed_run, tmp_path)
    make, expected = FOLDERS_THAT_ARE_NOT_CHECKPOINTS[kind]
    folder = make(newest)
    with pytest.raises(ValueError) as error:
        finetune_fet.main([*run, "--resume_from_checkpoint", str(folder)])
    message = str(error.value)
    for text in [str(folder), *expected, f"--resume_from_checkpoint {earlier}"]:
        assert text in message, message
    assert "is it a checkpoint of these scripts" not in message, message


# --------------------------------------------------------- issue #26, item 5: resuming with other arguments
def test_resume_with_other_arguments_is_refused_naming_each(checkpointed_run, files, tmp_path):
    """Another train file, batch size and learning rate: refused before anything is trained or written."""
    output_dir, run, _ = copy_run(checkpointed_run, tmp_path)
    other_train = write_mentions(tmp_path / "other.jsonl", FET_ROWS[:8])
    changed = ["--train_file", other_train, "--per_device_train_batch_size", "2", "--learning_rate", "0.01"]
    with pytest.raises(ValueError) as error:
        finetune_fet.main([*run, *changed, "--resume_from_checkpoint", "latest"])
    message = str(error.value)
    for text in [
        f"--train_file: {Path(files['train']).resolve()} then, {Path(other_train).resolve()} now",
        "--per_device_train_batch_size: 4 then, 2 now",
        "--learning_rate: 0.001 then, 0.01 now",
        "--ignore_resume_mismatch",
    ]:
        assert text in message, message
    assert "--max_steps" not in message and "--eval_steps" not in message  # only what differs
    assert not (output_dir / "all_results.json").exists()


def test_ignore_resume_mismatch_resumes_and_logs_the_differences(checkpointed_run, tmp_path, caplog):
    output_dir, run, _ = copy_run(checkpointed_run, tmp_path)
    with caplog.at_level("WARNING"):
        summary = finetune_fet.main(
            [*run, "--learning_rate", "0.01", "--resume_from_checkpoint", "latest", "--ignore_resume_mismatch"]
        )
    assert summary["steps"] == 8
    assert "--ignore_resume_mismatch" in caplog.text and "--learning_rate: 0.001 then, 0.01 now" in caplog.text
    saved = json.loads((output_dir / "checkpoints" / "checkpoint_8" / "run_arguments.json").read_text())
    assert saved["arguments"]["learning_rate"] == 0.01  # the checkpoints after the resume record what made them


def test_a_checkpoint_without_recorded_arguments_resumes_with_a_warning(
    checkpointed_run, straight_run, tmp_path, caplog
):
    """Checkpoints of earlier versions record no arguments: still resumed, exactly, with a warning."""
    straight_dir, straight = straight_run
    output_dir, run, checkpoints = copy_run(checkpointed_run, tmp_path)
    for checkpoint in checkpoints:
        (checkpoint / "run_arguments.json").unlink()
    with caplog.at_level("WARNING"):
        resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert "could not be checked" in caplog.text
    assert resumed["history"] == straight["history"]
    assert_same_weights(output_dir, straight_dir)


def test_every_training_script_checks_its_own_arguments(
    dropout_checkpoint,
    crossc_checkpoint,  # noqa: F811 (the imported fixture, by name)
    examples_file,  # noqa: F811
    tmp_path,
):
    """pretrain_ufet and pretrain_contrastive record their own argument dataclasses too (finetune_fet: above)."""
    ufet = ufet_args(dropout_checkpoint, tmp_path, tmp_path / "ufet", "--max_steps", "3", "--checkpointing_steps", "3")
    pretrain_ufet.main(ufet)
    reset_accelerate()
    with pytest.raises(ValueError, match=r"--mlm_loss_weight: 0\.1 then, 0\.2 now"):
        pretrain_ufet.main([*ufet, "--mlm_loss_weight", "0.2", "--resume_from_checkpoint", "latest"])
    reset_accelerate()
    contrastive = contrastive_args(
        crossc_checkpoint, examples_file, tmp_path / "contrastive", "--max_steps", "2", "--checkpointing_steps", "2"
    )
    pretrain_contrastive.main(contrastive)
    reset_accelerate()
    with pytest.raises(ValueError, match=r"--cross_weight: 1\.0 then, 0\.5 now"):
        pretrain_contrastive.main([*contrastive, "--cross_weight", "0.5", "--resume_from_checkpoint", "latest"])


def _resume_check(tmp_path: Path, saved: dict, now: dict) -> None:
    (tmp_path / "run_arguments.json").write_text(json.dumps(saved))
    checkpoints_module.check_resume_arguments(tmp_path, now, ignore_mismatch=False)


@pytest.mark.parametrize("schedule", ["constant", "linear"])
def test_max_steps_may_move_only_under_a_schedule_that_ignores_it(tmp_path, schedule):
    """Under a constant schedule --max_steps only says where the run stops (a run extended from a checkpoint equals
    one started with the new value); a decaying schedule spreads its learning rates over it."""
    launch = {"num_processes": 1, "mixed_precision": "no"}
    saved = {"arguments": {"lr_scheduler_type": schedule, "max_steps": 4}, "launch": launch}
    now = {"arguments": {"lr_scheduler_type": schedule, "max_steps": 8}, "launch": launch}
    if schedule == "constant":
        _resume_check(tmp_path, saved, now)
    else:
        with pytest.raises(ValueError, match="--max_steps: 4 then, 8 now"):
            _resume_check(tmp_path, saved, now)


def test_another_process_count_is_a_mismatch(tmp_path):
    """Two processes then, one now: the global batch halves, which no argument shows."""
    arguments = {"lr_scheduler_type": "constant"}
    with pytest.raises(ValueError, match=r"num_processes \(of the launch\): 2 then, 1 now"):
        _resume_check(tmp_path, {"arguments": arguments, "launch": {"num_processes": 2}},
                      {"arguments": arguments, "launch": {"num_processes": 1}})  # fmt: skip


# ------------------------------------------------------------------------- issue #26, item 6b: a full disk
INLINE_CONTAINER = "[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534"  # torch on a full disk
WRITE_FAILURES = {
    "ENOSPC from torch.save": ("torch", OSError(errno.ENOSPC, "No space left on device"), None, "the disk is full"),
    "torch's RuntimeError, disk full": ("torch", RuntimeError(INLINE_CONTAINER), 1000, "the disk is full"),
    "torch's RuntimeError, space left": ("torch", RuntimeError(INLINE_CONTAINER), None, "the write failed"),
    "safetensors on a full disk": (
        "safetensors",
        SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"),
        None,
        "the disk is full",
    ),
}


@pytest.mark.parametrize("failure", sorted(WRITE_FAILURES))
def test_a_failed_checkpoint_write_says_why_and_what_is_intact(dropout_checkpoint, files, tmp_path, failure):
    """The second checkpoint's write fails: the message says why, where, and names the intact first checkpoint; no
    unfinished folder stays."""
    writer, error, free, cause = WRITE_FAILURES[failure]
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2")
    module, name, marker = (torch, "save", "optimizer.bin") if writer == "torch" else (
        checkpoints_module, "save_file", "best_model.safetensors")  # fmt: skip
    original, writes = getattr(module, name), []

    def write(obj, path, *args, **kwargs):
        if str(path).endswith(marker):
            writes.append(path)
            if len(writes) == 2:
                Path(path).write_bytes(b"\0" * 100)  # what was written before the disk filled up
                raise error
        return original(obj, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, name, write)
        if free is not None:
            usage = shutil.disk_usage(tmp_path)
            patch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=free))
        with pytest.raises(OSError) as raised:
            finetune_fet.main(run)
    message = str(raised.value)
    folder = tmp_path / "checkpoints"
    intact = f"the last complete checkpoint, {folder / 'checkpoint_2'}, is intact"
    for text in [f"Could not save checkpoint_4 in {folder}: {cause}", "unfinished folder was removed", intact,
                 "--resume_from_checkpoint latest"]:  # fmt: skip
        assert text in message, message
    assert checkpoint_names(tmp_path) == ["checkpoint_2"] and incomplete_checkpoints(tmp_path) == {}


# ---------------------------------------------------------------------------------------- a real kill -9
def kill_9_when(run: list[str], output_dir: Path, moment, delay: float = 0.0, prelude: str | None = None) -> None:
    """Run `finetune_fet.py run` in a fresh interpreter (after the Python code `prelude`, if any) and `kill -9` it
    `delay` seconds after `moment(checkpoints folder)` first holds (polled every millisecond)."""
    # Bit-identical needs the same float summation order: as many threads as this process (the straight run's).
    environment = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    command = [sys.executable, *(["-c", prelude] if prelude else []), str(EXAMPLES / "finetune_fet.py"), *run]
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = output_dir / "checkpoints"
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if checkpoints.is_dir() and moment(checkpoints):
                time.sleep(delay)
                break
        except FileNotFoundError:  # a folder renamed or deleted while it was looked at
            pass
        time.sleep(0.001)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before the kill; the test proves nothing"
    assert not (output_dir / "model.safetensors").exists()


@pytest.mark.slow
def test_kill_9_while_a_checkpoint_is_written_then_resume_latest(dropout_checkpoint, files, straight_run, tmp_path):
    """The issue's recipe for real: `kill -9` as soon as a second folder appears under checkpoints/, then resume."""
    straight_dir, straight = straight_run
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2")
    kill_9_when(run, tmp_path, lambda checkpoints: len(os.listdir(checkpoints)) >= 2)
    reset_accelerate()
    resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert resumed["history"] == straight["history"]
    assert_same_weights(tmp_path, straight_dir)
    state = json.loads((tmp_path / "all_results.json").read_text())
    assert state["steps"] == 8


# A slow disk for the killed process: each file of a deleted checkpoint takes 50 ms to go, so that a kill lands in
# the middle of a rotation's deletion on any machine. Then the script runs as `python finetune_fet.py ...` would.
SLOW_DELETION = """
import os, runpy, shutil, sys, time
original = shutil.rmtree
def rmtree(path, *args, **kwargs):
    if "checkpoint_" in os.path.basename(path):
        for name in sorted(os.listdir(path)):
            time.sleep(0.05)
            os.unlink(os.path.join(path, name))
    return original(path, *args, **kwargs)
shutil.rmtree = rmtree
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(sys.argv[0])
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _third_checkpoint_saved(checkpoints: Path) -> bool:
    return (checkpoints / "checkpoint_6").is_dir()  # limit 2: rotation deletes checkpoint_2 right after


def _rotation_deleting(checkpoints: Path) -> bool:
    """checkpoint_2, under its own name or another, has lost some of its files but not all."""
    complete = len(os.listdir(checkpoints / "checkpoint_4"))
    return any(
        0 < len(os.listdir(checkpoints / name)) < complete
        for name in os.listdir(checkpoints)
        if name.endswith("checkpoint_2")
    )


ROTATION_KILLS = {  # moment, delay after it, prelude
    "2 ms after checkpoint_6 appears": (_third_checkpoint_saved, 0.002, None),
    "10 ms after checkpoint_6 appears": (_third_checkpoint_saved, 0.010, None),
    "mid-deletion, slow disk": (_rotation_deleting, 0.0, SLOW_DELETION),
}


@pytest.mark.slow
@pytest.mark.parametrize("when", list(ROTATION_KILLS))
def test_kill_9_during_checkpoint_rotation_then_resume_latest(dropout_checkpoint, files, straight_run, tmp_path, when):
    """`kill -9` within milliseconds of a checkpoint that makes rotation delete the oldest (default limit 2): no
    partial `checkpoint_<step>` is left, the resume is bit-identical, and nothing but complete checkpoints remains."""
    straight_dir, straight = straight_run
    run = fet_args(dropout_checkpoint, files, tmp_path, "--checkpointing_steps", "2")
    moment, delay, prelude = ROTATION_KILLS[when]
    kill_9_when(run, tmp_path, moment, delay, prelude)
    left = incomplete_checkpoints(tmp_path)
    assert not [name for name in left if name.startswith("checkpoint_")], left
    if prelude:
        assert left == {"deleting-checkpoint_2": "a leftover"}, left  # the kill did land mid-deletion
    reset_accelerate()
    resumed = finetune_fet.main([*run, "--resume_from_checkpoint", "latest"])
    assert resumed["history"] == straight["history"]
    assert_same_weights(tmp_path, straight_dir)
    assert incomplete_checkpoints(tmp_path) == {}
