"""Resumable checkpoints: where a run is (`TrainingState`), saving it atomically next to accelerate's state,
checking a folder (and the arguments that saved it) before resuming it, finding the newest complete one, rotation.

A checkpoint is `<output_dir>/checkpoints/checkpoint_<step>`: accelerate's `save_state` (weights, optimizer,
scheduler, random states), `training_state.json`, `run_arguments.json` and the best-so-far dev weights. It is written
under an `unfinished-` name and renamed once complete, and renamed to a `deleting-` name before it is deleted, so a
kill at any moment leaves no partial `checkpoint_<step>`: only leftovers that resuming skips and the next save removes.
"""

import errno
import json
import logging
import os
import re
import shutil
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file


logger = logging.getLogger(__name__)

STATE_FILE = "training_state.json"
BEST_WEIGHTS_FILE = "best_model.safetensors"
CHECKPOINT_PATTERN = re.compile(r"checkpoint_(\d+)")  # a complete checkpoint folder, named by its optimizer step
UNFINISHED_PREFIX = "unfinished-"  # a checkpoint being written; renamed to `checkpoint_<step>` once complete
DELETING_PREFIX = "deleting-"  # a checkpoint being deleted (rotation, later steps dropped); renamed before rmtree
LEFTOVERS = {
    UNFINISHED_PREFIX: "a checkpoint save that was interrupted",
    DELETING_PREFIX: "a checkpoint deletion (rotation, --overwrite_output_dir) that was interrupted",
}
ARGUMENTS_FILE = "run_arguments.json"
# Arguments that cannot change what a run computes, left out of `run_arguments.json` and of the resume check: where
# it writes, how it resumes and reports, and when it checkpoints (a resumed run is bit-identical whatever the
# cadence). Every other argument of the scripts' argument dataclasses is recorded and compared.
UNCHECKED_ARGUMENTS = frozenset({
    "output_dir", "overwrite_output_dir", "resume_from_checkpoint", "ignore_resume_mismatch",
    "checkpointing_steps", "checkpoints_total_limit", "with_tracking", "report_to",
    "test_file",  # scored once, after training, with the selected model
    "show_examples", "cache_dir",  # finetune_fet: printed examples; where fitted MLM heads are cached (same fit)
})  # fmt: skip
# Schedules that never read --max_steps: under them --max_steps only says where the run stops, so a resume may move
# it (the run then equals one started with the new value). Any other schedule spreads its decay over --max_steps.
SCHEDULES_WITHOUT_MAX_STEPS = frozenset(
    {"constant", "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau", "greedy"}
)
WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)  # torch.save reports a full disk as a RuntimeError


@dataclass
class TrainingState:
    """Where a run is; saved as JSON next to each accelerate checkpoint so a resumed run continues exactly."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_step: int = -1
    best_key: list[float] | None = None
    best_metrics: dict | None = None
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    window_loss: float = 0.0  # training loss summed since the last evaluation
    window_batches: int = 0
    train_seconds: float = 0.0  # time in training steps, evaluation and checkpointing excluded
    train_examples: int = 0  # examples this process trained on

    def samples_per_second(self, num_processes: int) -> float:
        return self.train_examples * num_processes / self.train_seconds if self.train_seconds else 0.0


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed: a file is missing or damaged, or it was saved with other
    arguments than the resuming run's."""


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (full disk, failed write); its unfinished folder is removed and the
    checkpoints saved before it are intact."""


def checkpoints_folder(output_dir: str | Path) -> Path:
    """Where a run in `output_dir` keeps its checkpoints."""
    return Path(output_dir) / "checkpoints"


def _checkpoints(folder: Path) -> list[Path]:
    """`checkpoint_<step>` folders under `folder`, oldest first (complete or not: see `checkpoint_problem`)."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and CHECKPOINT_PATTERN.fullmatch(path.name)]
    return sorted(found, key=_step_of)


def has_checkpoints(output_dir: str | Path) -> bool:
    """Whether a run in `output_dir` saved any checkpoint (complete or not: resuming from 'latest' sorts them out)."""
    return bool(_checkpoints(checkpoints_folder(output_dir)))


def _complete_checkpoints(folder: Path, accelerator: Accelerator, scheduler: bool | None) -> list[Path]:
    """The complete `checkpoint_<step>` folders under `folder`, oldest first."""
    return [path for path in _checkpoints(folder) if checkpoint_problem(path, accelerator, scheduler) is None]


def _step_of(path: Path) -> int:
    return int(CHECKPOINT_PATTERN.fullmatch(path.name).group(1))


def _leftover_kind(path: Path) -> str | None:
    """What interrupted operation left the folder `path` (see `LEFTOVERS`), or None for any other folder."""
    for prefix, kind in LEFTOVERS.items():
        if path.name.startswith(prefix):
            return kind
    return None


def _leftovers(folder: Path) -> list[Path]:
    """The leftovers of interrupted saves and deletions under `folder`, by name."""
    if not folder.is_dir():
        return []
    return sorted(path for path in folder.iterdir() if path.is_dir() and _leftover_kind(path))


def remove_leftovers(output_dir: str | Path, accelerator: Accelerator) -> None:
    """Delete (and report) what interrupted checkpoint saves and deletions left under `output_dir`: run at each save
    and when a run resumes, so a kill's leftovers do not stay."""
    if accelerator.is_main_process:
        for path in _leftovers(checkpoints_folder(output_dir)):
            logger.warning(f"Deleting {path}: the leftover of {_leftover_kind(path)}.")
            shutil.rmtree(path)
    accelerator.wait_for_everyone()


def delete_checkpoints(output_dir: str | Path) -> None:
    """Delete the checkpoints folder of `output_dir` (a run replaced by --overwrite_output_dir), each checkpoint
    renamed first as rotation does, so a kill leaves no partial `checkpoint_<step>`. For the main process."""
    folder = checkpoints_folder(output_dir)
    for path in _checkpoints(folder):
        _delete_checkpoint(path)
    shutil.rmtree(folder, ignore_errors=True)


def _delete_checkpoint(path: Path) -> None:
    """Delete the checkpoint folder `path`: renamed to a `deleting-` name first (made durable), so a kill during the
    deletion leaves a leftover that resuming skips and the next save removes, never a partial `checkpoint_<step>`."""
    doomed = path.with_name(f"{DELETING_PREFIX}{path.name}")
    if doomed.exists():
        shutil.rmtree(doomed)
    os.replace(path, doomed)
    _sync_folder(path.parent, files=False)
    shutil.rmtree(doomed)


# ------------------------------------------------------------------------------------------------------ checking
def _file_problem(path: Path) -> str | None:
    """Why `path` cannot be loaded (missing, empty, unreadable), read only as far as needed to tell; None if fine."""
    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size == 0:
        return f"{path.name} is empty"
    try:
        if path.suffix == ".safetensors":
            with safe_open(path, "pt") as handle:
                handle.keys()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif not zipfile.is_zipfile(path):  # torch.save's format: a truncated file loses its zip directory
            return f"{path.name} is damaged (not a complete torch file)"
    except Exception as error:  # any reason a library would refuse it
        return f"{path.name} is damaged ({type(error).__name__}: {error})"
    return None


def checkpoint_problem(path: Path, accelerator: Accelerator, scheduler: bool | None = None) -> str | None:
    """Why the checkpoint folder `path` cannot be resumed (every missing file, else the first damaged one), or None
    when it is complete.

    Checks every file `Accelerator.load_state` and the training loop read, before either reads them: weights,
    optimizer, scheduler (`scheduler`: required; None: checked when present), each process's random states, the
    training state, the recorded arguments (older checkpoints have none) and the best-so-far weights. Sharded FSDP /
    DeepSpeed weights are left to their loaders.
    """
    if not path.is_dir():
        return "the folder does not exist"
    names = _expected_files(path, accelerator, scheduler)
    missing = [name for name in names if not (path / name).is_file()]
    if missing:
        return f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"
    for name in names:
        problem = _file_problem(path / name)
        if problem:
            return problem
    best_step = json.loads((path / STATE_FILE).read_text()).get("best_step", -1)
    if best_step >= 0 or (path / BEST_WEIGHTS_FILE).exists():
        return _file_problem(path / BEST_WEIGHTS_FILE)
    return None


def _expected_files(path: Path, accelerator: Accelerator, scheduler: bool | None) -> list[str]:
    """The files of a complete checkpoint in `path` that `checkpoint_problem` checks first (see there)."""
    names = [STATE_FILE, *(f"random_states_{index}.pkl" for index in range(accelerator.num_processes))]
    if accelerator.distributed_type not in (
        DistributedType.FSDP,
        DistributedType.DEEPSPEED,
        DistributedType.MEGATRON_LM,
    ):
        weights = "pytorch_model.bin" if (path / "pytorch_model.bin").is_file() else "model.safetensors"
        names += [weights, "optimizer.bin"]
    if scheduler or (scheduler is None and (path / "scheduler.bin").exists()):
        names.append("scheduler.bin")
    if (path / ARGUMENTS_FILE).exists():
        names.append(ARGUMENTS_FILE)
    return names


# ---------------------------------------------------------------------------------------------------- resolving
def resolve_checkpoint(
    spec: str, output_dir: str | Path, accelerator: Accelerator, scheduler: bool | None = None
) -> Path:
    """The checkpoint `--resume_from_checkpoint spec` names: a complete folder, or the newest complete one under
    `output_dir` for 'latest'.

    'latest' skips (and warns about) leftovers of interrupted saves and deletions and damaged folders; a named folder
    that is not complete fails with the reason and the other complete checkpoints beside it, newest first, to resume
    from instead.
    """
    if spec != "latest":
        return _check_named_checkpoint(Path(spec), accelerator, scheduler)
    folder = checkpoints_folder(output_dir)
    skipped = [f"{path.name}: {_leftover_kind(path)}" for path in _leftovers(folder)]
    for path in reversed(_checkpoints(folder)):
        problem = checkpoint_problem(path, accelerator, scheduler)
        if problem is None:
            for reason in skipped:
                logger.warning(f"--resume_from_checkpoint latest: skipped {folder}/{reason}.")
            logger.info(f"--resume_from_checkpoint latest: {path}")
            return path
        skipped.append(f"{path.name}: {problem}")
    raise FileNotFoundError(
        f"--resume_from_checkpoint latest: no complete checkpoint under {folder}"
        + (f" (skipped {'; '.join(skipped)})" if skipped else "")
        + ". Start the run again with --overwrite_output_dir, or in a new --output_dir."
    )


def _check_named_checkpoint(path: Path, accelerator: Accelerator, scheduler: bool | None) -> Path:
    """`path` when it is a complete checkpoint; else fail naming the problem and the complete ones beside it."""
    if not path.is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint {path}: no such checkpoint folder.")
    leftover = _leftover_kind(path)
    problem = None if leftover else checkpoint_problem(path, accelerator, scheduler)
    if leftover is None and problem is None:
        return path
    if leftover:
        problem = f"it is the leftover of {leftover}, not a checkpoint (resuming the run or its next save deletes it)"
    elif any((path / name).is_file() for name in _expected_files(path, accelerator, scheduler)):
        if "missing" in problem:
            problem += " (the folder holds part of a checkpoint: files were removed or never copied)"
    elif CHECKPOINT_PATTERN.fullmatch(path.name):
        problem += " (an empty checkpoint folder)"
    else:
        problem += " (is it a checkpoint of these scripts?)"
    others = [str(other) for other in reversed(_complete_checkpoints(path.parent, accelerator, scheduler))]
    fix = (
        f"Resume from another complete checkpoint instead: --resume_from_checkpoint {others[0]}"
        + (f" (others: {', '.join(others[1:])})" if others[1:] else "")
        if others
        else f"{path.parent} holds no other complete checkpoint: start again with --overwrite_output_dir"
    )
    raise CheckpointError(f"Cannot resume from checkpoint {path}: {problem}. {fix}.")


def drop_newer_checkpoints(
    checkpoint: Path, output_dir: str | Path, overwrite: bool, accelerator: Accelerator
) -> None:
    """Resuming replays the steps after `checkpoint`: complete checkpoints of later steps in `output_dir` would be
    overwritten one by one and could be resumed by mistake meanwhile, so they need `overwrite` to be deleted."""
    step = json.loads((checkpoint / STATE_FILE).read_text())["step"]
    newer = [
        path
        for path in _checkpoints(checkpoints_folder(output_dir))
        if _step_of(path) > step and path.resolve() != checkpoint.resolve()
    ]
    if not overwrite:
        newer = [path for path in newer if checkpoint_problem(path, accelerator) is None]
        if newer:
            raise FileExistsError(
                f"{', '.join(path.name for path in newer)} in {newer[0].parent} saved later steps than {checkpoint} "
                f"(step {step}); resuming from it would replace them. Resume with --resume_from_checkpoint latest, "
                "or pass --overwrite_output_dir to discard them."
            )
        return
    if newer:
        logger.warning(f"--overwrite_output_dir: deleting {', '.join(map(str, newer))}, saved after step {step}.")
    if accelerator.is_main_process:
        for path in newer:
            _delete_checkpoint(path)
    accelerator.wait_for_everyone()


# -------------------------------------------------------------------------------------------- run arguments
def run_arguments(accelerator: Accelerator, *groups: object) -> dict:
    """What a checkpoint records of the run that saved it, so that resuming it as another run is refused: every
    field of the argument dataclasses `groups` except `UNCHECKED_ARGUMENTS` (an existing path resolved, so the same
    file named from another folder compares equal), and the launch (process count, mixed precision)."""
    arguments = {
        name: _comparable(value)
        for group in groups
        for name, value in asdict(group).items()
        if name not in UNCHECKED_ARGUMENTS
    }
    launch = {"num_processes": accelerator.num_processes, "mixed_precision": str(accelerator.mixed_precision)}
    return json.loads(json.dumps({"arguments": arguments, "launch": launch}, default=str))  # as read back


def _comparable(value: object) -> object:
    if isinstance(value, str) and value and os.path.exists(value):
        return str(Path(value).resolve())
    if isinstance(value, (list, tuple)):
        return [_comparable(item) for item in value]
    return value


def check_resume_arguments(checkpoint: Path, arguments: dict, ignore_mismatch: bool) -> None:
    """Refuse to resume `checkpoint` with `arguments` (`run_arguments`) other than those it was saved with, naming
    each difference with both values: the resumed run would be neither run. With `ignore_mismatch`
    (--ignore_resume_mismatch) the differences are logged instead. A checkpoint of an earlier version records no
    arguments: resumed with a warning that they could not be checked."""
    file = checkpoint / ARGUMENTS_FILE
    if not file.is_file():
        logger.warning(
            f"{checkpoint} records no arguments (no {ARGUMENTS_FILE}: saved by an earlier version), so this resume's "
            "arguments could not be checked against the run that saved it; resume with the same ones."
        )
        return
    saved = json.loads(file.read_text())
    differences, unrecorded = [], []
    for section, label in (("arguments", "--{}"), ("launch", "{} (of the launch)")):
        before, now = saved.get(section, {}), arguments[section]
        for name in sorted(before.keys() | now.keys()):
            if name not in before or name not in now:
                unrecorded.append(label.format(name))
            elif before[name] != now[name] and not _moves_only_the_end(name, saved, arguments):
                differences.append(f"{label.format(name)}: {_shown(before[name])} then, {_shown(now[name])} now")
    if unrecorded:
        logger.warning(
            f"{checkpoint}: {', '.join(unrecorded)} not recorded on both sides (saved by another version of the "
            "script?): not checked."
        )
    if not differences:
        return
    listed = "\n  ".join(differences)
    if ignore_mismatch:
        logger.warning(f"--ignore_resume_mismatch: resuming {checkpoint}, saved with other arguments:\n  {listed}")
        return
    raise CheckpointError(
        f"Cannot resume from {checkpoint}: it was saved with other arguments, and resuming would mix two runs in one "
        f"model and its results:\n  {listed}\nResume with the checkpoint's values, or pass "
        "--ignore_resume_mismatch to continue with the new ones anyway."
    )


def _moves_only_the_end(name: str, saved: dict, arguments: dict) -> bool:
    """A changed --max_steps under schedules that never read it only moves where the run stops (see
    `SCHEDULES_WITHOUT_MAX_STEPS`); `saved` and `arguments` are two `run_arguments`."""
    schedules = {record["arguments"].get("lr_scheduler_type") for record in (saved, arguments)}
    return name == "max_steps" and schedules <= SCHEDULES_WITHOUT_MAX_STEPS


def _shown(value: object) -> str:
    return "unset" if value is None else str(value)


# ------------------------------------------------------------------------------------------- loading and saving
def load_checkpoint(
    spec: str,
    output_dir: str | Path,
    accelerator: Accelerator,
    scheduler: bool,
    arguments: dict | None = None,
    ignore_mismatch: bool = False,
) -> tuple[TrainingState, dict[str, torch.Tensor] | None, Path]:
    """Load the checkpoint `spec` names after checking every file and, with `arguments` (`run_arguments`), that it
    was saved with the same ones (see `check_resume_arguments`): the accelerate state (into the prepared objects),
    the training state and the best-so-far weights; also returns the folder it came from. Leftovers of interrupted
    saves and deletions in `output_dir` are removed."""
    path = resolve_checkpoint(spec, output_dir, accelerator, scheduler)
    if arguments is not None:
        check_resume_arguments(path, arguments, ignore_mismatch)
    remove_leftovers(output_dir, accelerator)
    accelerator.load_state(str(path))
    state = TrainingState(**json.loads((path / STATE_FILE).read_text()))
    best_file = path / BEST_WEIGHTS_FILE
    best_weights = load_file(best_file) if best_file.is_file() else None
    logger.info(f"Resumed from {path} at step {state.step} (epoch {state.epoch}, batch {state.batches_in_epoch}).")
    return state, best_weights, path


def save_checkpoint(
    accelerator: Accelerator,
    state: TrainingState,
    best_weights: dict[str, torch.Tensor] | None,
    output_dir: str | Path,
    total_limit: int | None,
    keep: Path | None,
    scheduler: bool,
    arguments: dict | None = None,
) -> Path:
    """Save `checkpoints/checkpoint_<step>` atomically: written under an unfinished name, synced, then renamed.

    A kill at any moment leaves either the complete folder or an `unfinished-` one that resuming skips. Then the
    oldest complete checkpoints beyond `total_limit` are deleted, never `keep` (resumed from). `arguments`
    (`run_arguments`) are recorded for the resume check. A failed write (full disk) raises `CheckpointSaveError`
    after removing the unfinished folder.
    """
    folder = checkpoints_folder(output_dir)
    final = folder / f"checkpoint_{state.step}"
    partial = folder / f"{UNFINISHED_PREFIX}{final.name}"
    remove_leftovers(output_dir, accelerator)
    try:
        accelerator.save_state(output_dir=str(partial))
        if accelerator.is_main_process:
            if best_weights is not None:
                save_file(best_weights, str(partial / BEST_WEIGHTS_FILE))
            if arguments is not None:
                (partial / ARGUMENTS_FILE).write_text(json.dumps(arguments, indent=1))
            (partial / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _sync_folder(partial)
    except WRITE_ERRORS as error:
        raise _save_failure(error, partial, accelerator, scheduler) from error
    if accelerator.is_main_process:
        if final.exists():
            logger.warning(f"Replacing {final} (an incomplete or abandoned checkpoint of step {state.step}).")
            _delete_checkpoint(final)
        os.replace(partial, final)
        _sync_folder(folder, files=False)
        _rotate_checkpoints(folder, total_limit, [final, keep], accelerator, scheduler)
    accelerator.wait_for_everyone()
    return final


def _save_failure(error: Exception, partial: Path, accelerator: Accelerator, scheduler: bool) -> CheckpointSaveError:
    """Remove the unfinished folder `partial` whose writing raised `error`; the error to raise: why (a full disk when
    the system says so, or when less space is free than a checkpoint takes), where, and what is intact."""
    folder = partial.parent
    complete = _complete_checkpoints(folder, accelerator, scheduler)[::-1]  # newest first
    needed = max(_size(partial), _size(complete[0]) if complete else 0)  # what a checkpoint takes, at least
    free = shutil.disk_usage(next(path for path in (folder, *folder.parents) if path.exists())).free
    reason = f"{type(error).__name__}: {error}"
    if _is_disk_full(error) or free < needed:
        cause = f"the disk is full ({free / 2**20:.1f} MiB free; {reason})"
    else:
        cause = f"the write failed ({reason}; {free / 2**20:.0f} MiB free)"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    intact = (
        f"the last complete checkpoint, {complete[0]}, is intact: once the write can succeed, continue the run with "
        "--resume_from_checkpoint latest"
        if complete
        else "no complete checkpoint was saved before it: once the write can succeed, start the run again with "
        "--overwrite_output_dir"
    )
    name = partial.name.removeprefix(UNFINISHED_PREFIX)
    return CheckpointSaveError(
        f"Could not save {name} in {folder}: {cause}. Its unfinished folder was removed; {intact}."
    )


def _size(folder: Path) -> int:
    """Bytes in the files under `folder` (0 when it does not exist)."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _is_disk_full(error: BaseException) -> bool:
    """Whether `error` or an error it came from says the disk (or the user's quota) is full."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def _sync_folder(folder: Path, files: bool = True) -> None:
    """fsync the files of `folder` and the folder itself, so a rename after it cannot name unwritten data."""
    paths = [path for path in folder.iterdir() if path.is_file()] if files else []
    for path in [*paths, folder]:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _rotate_checkpoints(
    folder: Path, limit: int | None, keep: list[Path | None], accelerator: Accelerator, scheduler: bool
) -> None:
    """Delete the oldest complete checkpoints beyond `limit`, except those in `keep`; damaged ones are left alone."""
    if limit is None:
        return
    kept = {path.resolve() for path in keep if path is not None}
    complete = _complete_checkpoints(folder, accelerator, scheduler)
    excess = len(complete) - limit
    for path in complete:
        if excess <= 0:
            break
        if path.resolve() in kept:
            continue
        _delete_checkpoint(path)
        excess -= 1


__all__ = [
    "CheckpointError",
    "CheckpointSaveError",
    "TrainingState",
    "check_resume_arguments",
    "checkpoint_problem",
    "checkpoints_folder",
    "delete_checkpoints",
    "drop_newer_checkpoints",
    "load_checkpoint",
    "remove_leftovers",
    "resolve_checkpoint",
    "run_arguments",
    "save_checkpoint",
]
