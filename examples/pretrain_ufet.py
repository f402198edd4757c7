"""Train FiveFine (`BertForPhraseTypeTyping`) for ultra-fine entity typing (UFET, 10,331 free-form types).

The objective of FiveFine's weak-supervision stage: weighted BCE over all types (original labels weigh
`--original_label_weight`, prompt-generated `extra_labels` weigh `--extra_label_weight`, negatives 1) + 0.1 x MLM on
the same corrupted input + 0.1 x neighbor-word prediction every `--nwp_interval` steps. The step with the best dev
macro-F1 is kept (UFET rule: every type with probability >= 0.5, the best one if none passes).

    # the 2k crowd set (dev for selection, test at the end)
    accelerate launch examples/pretrain_ufet.py --train_file ufet/train.json --validation_file ufet/dev.json \\
        --test_file ufet/test.json --types_file ufet/types.txt --output_dir outputs/ufet-crowd

    # million-line weak files, read as a stream (add prompt labels to each line as "extra_labels")
    accelerate launch examples/pretrain_ufet.py --train_file "weak/open_train_*.json" --streaming \\
        --validation_file ufet/dev.json --types_file ufet/types.txt --max_steps 200000 --eval_steps 2000 \\
        --checkpointing_steps 10000 --output_dir outputs/ufet-weak

FiveFine's crowd fine-tuning stage (plain BCE, no MLM/NWP) is `--original_label_weight 1 --mlm_loss_weight 0
--nwp_loss_weight 0`, starting from a weakly trained checkpoint.
"""

import glob
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import datasets
import torch
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import HfArgumentParser

import modeling_entity_typing  # noqa: F401  (registers the model and the pipeline)
from modeling_entity_typing import BertForPhraseTypeTyping, corrupt_for_mlm
from modeling_entity_typing.calibration import (
    PlattScaling,
    calibration_report,
    fit_platt,
    reset_calibration,
    top_k_pairs,
)
from modeling_entity_typing.configuration.configuration_fivefine import TypeSpaceName
from modeling_entity_typing.data.mention_data import (
    MentionFormat,
    SchemaReport,
    load_mentions,
    read_label_list,
    restrict_to_labels,
)
from modeling_entity_typing.decision import decide, own_thresholds
from modeling_entity_typing.evaluation.scoring import (
    check_threshold_groups,
    gold_matrix,
    tune_group_thresholds,
    tune_threshold,
    typing_scores,
)
from modeling_entity_typing.fivefine import NWP_KEYS, NeighborWordInputs
from modeling_entity_typing.training import (
    DataCollatorForEntityTyping,
    TrainingArguments,
    TypeBank,
    build_optimizer,
    build_scheduler,
    check_model_name_or_path,
    configure_logging,
    create_accelerator,
    default_encoder,
    featurize_mentions,
    featurize_split,
    freeze_unused_heads,
    global_batch_size,
    predict_logits,
    predict_probabilities,
    sample_type_columns,
    save_final,
    summarize,
    train_with_selection,
)
from modeling_entity_typing.training.training_args import Range, check_ranges


logger = get_logger(__name__)


@dataclass
class UFETArguments:
    """Data, type vocabulary and the FiveFine objective."""

    train_file: str = field(metadata={"help": "Training mentions; a glob or comma-separated list for many files."})
    validation_file: str = field(metadata={"help": "Dev mentions for model selection (UFET crowd dev)."})
    types_file: str = field(metadata={"help": "The type vocabulary, one type per line (UFET types.txt)."})
    test_file: str | None = field(default=None, metadata={"help": "Test mentions, scored with the best dev model."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A BERT encoder or a FiveFine checkpoint; default: the bundled MiniLM."}
    )
    data_format: MentionFormat | None = field(default=None, metadata={"help": "The files' format; default: detected."})
    streaming: bool = field(default=False, metadata={"help": "Read training files as a stream (large weak data)."})
    shuffle_buffer_size: Annotated[int, Range(ge=1)] = field(
        default=10_000, metadata={"help": "Shuffle buffer of a streamed train set."}
    )
    # FiveFine's config: a template of at least 8 word pieces, at most `max_position_embeddings`.
    max_seq_length: Annotated[int | None, Range(ge=8, note="unset: the model's")] = field(
        default=None, metadata={"help": "Template length in word pieces (128)."}
    )
    mlm_loss_weight: Annotated[float, Range(ge=0, note="0: off")] = field(
        default=0.1, metadata={"help": "Weight of the MLM term (0: off)."}
    )
    nwp_loss_weight: Annotated[float, Range(ge=0, note="0: off")] = field(
        default=0.1, metadata={"help": "Weight of neighbor-word prediction (0: off)."}
    )
    nwp_interval: Annotated[int, Range(ge=1)] = field(
        default=10, metadata={"help": "Add the NWP term every N optimizer steps (reference)."}
    )
    mlm_probability: Annotated[float, Range(gt=0, lt=1)] = field(
        default=0.1, metadata={"help": "Share of tokens chosen as MLM targets."}
    )
    original_label_weight: Annotated[float, Range(ge=0)] = field(
        default=5.0, metadata={"help": "BCE weight of original labels."}
    )
    extra_label_weight: Annotated[float, Range(ge=0)] = field(
        default=1.0, metadata={"help": "BCE weight of prompt labels (extra_labels)."}
    )
    type_space: TypeSpaceName = field(
        default="mlm",
        metadata={"help": "From a plain encoder: 'mlm' (the paper: MLM head, attention-pooled phrases) or 'encoder' "
                  "(mean-pooled encoder outputs, for sentence encoders such as MiniLM)."},
    )  # fmt: skip
    sampled_negative_types: Annotated[int, Range(ge=0, note="0: all types")] = field(
        default=0,
        metadata={"help": "Train each step against the batch's target types plus this many random others (0: all "
                  "types). An approximation that 'encoder' type space needs to be affordable; evaluation uses all."},
    )  # fmt: skip
    type_bank_refresh_steps: Annotated[int, Range(ge=0, note="0: off")] = field(
        default=0,
        metadata={"help": "Score each step against all types: the batch's target types encoded now, with gradients, "
                  "the others from a bank of type vectors recomputed (no gradients) every N steps (0: off). Makes "
                  "'encoder' type space affordable without sampling; --checkpointing_steps must be a multiple of N."},
    )  # fmt: skip
    type_bank_matched_negatives: Annotated[int, Range(ge=0, note="0: the full loss")] = field(
        default=512,
        metadata={"help": "With the type bank: weight the non-target types so that the loss equals, in expectation, "
                  "training against the targets plus this many sampled negatives (0: the plain BCE over all types, "
                  "which dilutes the positives; BENCHMARKS.md)."},
    )  # fmt: skip
    type_bank_fresh_negatives: Annotated[int, Range(ge=0, note="0: only the targets")] = field(
        default=64,
        metadata={"help": "With the type bank: also re-encode this many random non-target types each step, their "
                  "gradients scaled so that every type gets its full gradient in expectation (0: only the targets)."},
    )  # fmt: skip
    max_validation_samples: Annotated[int | None, Range(ge=1, note="unset: all")] = field(
        default=None, metadata={"help": "Score only the first N dev lines."}
    )
    calibrate: bool = field(
        default=True,
        metadata={"help": "After selection, fit Platt scaling on dev (each mention's 10 best types) so probabilities "
                  "mean what they say; stored in the config with the threshold mapped through it (same labels, "
                  "same rankings); ECE and reliability before and after, on dev and test, go into all_results.json."},
    )  # fmt: skip
    threshold_groups: Annotated[list[int] | None, Range(ge=1, note="unset: one threshold")] = field(
        default=None,
        metadata={"help": "Sizes of leading groups of --types_file that get a decision threshold each, chosen on dev "
                  "after selection; the other types share one (UFET: 9 121, its 9 general and 121 fine types)."},
    )  # fmt: skip
    tune_threshold: bool = field(
        default=True,
        metadata={"help": "Score each dev evaluation at its best threshold (0.05 steps); the selected model keeps its "
                  "threshold in the config, and test is scored there. Off: the config's threshold (0.5)."},
    )  # fmt: skip

    def __post_init__(self):
        check_ranges(self)
        check_model_name_or_path(self.model_name_or_path)
        if self.type_bank_refresh_steps and self.sampled_negative_types:
            raise ValueError(
                "--type_bank_refresh_steps and --sampled_negative_types are two ways to afford the encoder type "
                "space; pass one of them."
            )
        for name in ("validation_file", "types_file", "test_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"--{name}: no file at {path}.")
        if not self.train_files():
            raise FileNotFoundError(f"--train_file {self.train_file!r} matches no file.")

    def train_files(self) -> list[str]:
        files = []
        for pattern in self.train_file.split(","):
            files.extend(sorted(glob.glob(pattern.strip())) or ([pattern] if Path(pattern).is_file() else []))
        return files


def parse_args(argv: list[str] | None = None) -> tuple[UFETArguments, TrainingArguments]:
    parser = HfArgumentParser((UFETArguments, TrainingArguments))
    parser.set_defaults(per_device_train_batch_size=32, learning_rate=1e-5, max_steps=5000, eval_steps=100)
    args, train_args = parser.parse_args_into_dataclasses(args=argv)
    refresh, checkpointing = args.type_bank_refresh_steps, train_args.checkpointing_steps
    if refresh and checkpointing and checkpointing % refresh:
        raise ValueError(
            f"--checkpointing_steps {checkpointing} must be a multiple of --type_bank_refresh_steps {refresh}: a "
            "resumed run rebuilds the type bank from the checkpoint's weights, which is exact only at a refresh step."
        )
    return args, train_args


def main(argv: list[str] | None = None) -> dict:
    args, train_args = parse_args(argv)
    # NWP runs every `nwp_interval` steps, so its head is idle on the others: DDP must be told.
    accelerator = create_accelerator(train_args, find_unused_parameters=args.nwp_loss_weight > 0)
    configure_logging(accelerator)
    set_seed(train_args.seed)

    types = load_types(args)
    model, tokenizer, type_bank = build_model_and_type_bank(args, types, accelerator)
    splits = load_data(args, types)
    train_dataloader, dev_dataloader, test_dataloader = build_dataloaders(
        splits, model, tokenizer, accelerator, args, train_args
    )
    optimizer = build_optimizer(
        model,
        train_args.learning_rate,
        train_args.weight_decay,
        train_args.head_learning_rate,
        head_parameter_prefixes=model.head_parameter_prefixes,
    )
    lr_scheduler = build_scheduler(optimizer, train_args, accelerator)
    model, optimizer, train_dataloader, dev_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, dev_dataloader, lr_scheduler
    )
    if test_dataloader is not None:
        test_dataloader = accelerator.prepare(test_dataloader)
    if train_args.with_tracking:
        accelerator.init_trackers("pretrain_ufet", {**vars(args), **vars(train_args)})

    log_run(args, splits, types, type_bank, accelerator, train_args)
    dev_gold = splits.dev["labels"]
    state = train_with_selection(
        accelerator,
        model,
        optimizer,
        train_dataloader,
        lambda _: evaluate_on(model, dev_dataloader, dev_gold, accelerator, tune=args.tune_threshold),
        train_args,
        lr_scheduler=lr_scheduler,
        prepare_batch=batch_preparation(args, model, tokenizer, accelerator, type_bank),
        selection_keys=("macro_f1",),
        script_args=args,  # recorded with each checkpoint, checked on resume
    )
    if args.streaming:
        splits.skipped.log("train (streamed)")

    # ---- the selected model: its decision rule and calibration chosen on dev, its scores, then save
    config = accelerator.unwrap_model(model).config
    logits, golds = predict_splits(model, dev_dataloader, test_dataloader, splits, accelerator)
    calibration = fit_decision_rule(config, state, logits, golds, args)
    results = score_splits(config, logits, golds, args.threshold_groups)
    summary = summarize(
        results,
        state,
        accelerator,
        train_args,
        train_examples=splits.num_train,
        skipped_train_records=splits.skipped.records_dropped,
        skipped_train_labels=sum(splits.skipped.labels_dropped.values()),
        num_types=len(types),
        type_bank_refresh_seconds=None if type_bank is None else sum(type_bank.refresh_seconds),
        calibration=calibration,
    )
    save_final(accelerator, model, tokenizer, train_args.output_dir, summary)
    if accelerator.is_main_process:
        report(results, calibration, state, config, train_args)
    accelerator.end_training()  # stops any trackers; every process leaves the process group together
    return summary


# ------------------------------------------------------------------------------------------------ types, model
def load_types(args: UFETArguments) -> list[str]:
    """The type vocabulary of --types_file, each type once (the leading lines form the --threshold_groups, checked
    here, before training, not after it)."""
    types = read_label_list(args.types_file, repeats="error")
    if args.threshold_groups:
        try:
            check_threshold_groups(args.threshold_groups, len(types))
        except ValueError as error:
            raise ValueError(f"--threshold_groups, --types_file {args.types_file}: {error}") from None
    return types


def build_model(args: UFETArguments, types: list[str]):
    name = args.model_name_or_path or default_encoder()
    overrides = {
        "mlm_loss_weight": args.mlm_loss_weight,
        "nwp_loss_weight": args.nwp_loss_weight,
        "mlm_probability": args.mlm_probability,
        "original_label_weight": args.original_label_weight,
        "extra_label_weight": args.extra_label_weight,
        "decision": "threshold",
    }
    if args.max_seq_length:
        overrides["max_seq_length"] = args.max_seq_length
    model, tokenizer = BertForPhraseTypeTyping.for_labels(
        name, types, new_model_overrides={"type_space": args.type_space}, **overrides
    )
    reset_calibration(model.config)  # a trained start's calibration was fitted to other labels
    terms = {"mlm": args.mlm_loss_weight, "nwp": args.nwp_loss_weight}
    model.check_training_terms(terms)
    freeze_unused_heads(model, active_terms=[term for term, weight in terms.items() if weight > 0])
    return model, tokenizer


def build_model_and_type_bank(args: UFETArguments, types: list[str], accelerator) -> tuple:
    """`build_model`, checked against its type space, and with --type_bank_refresh_steps the `TypeBank` that
    scores every type each step; returns `(model, tokenizer, type_bank or None)`."""
    model, tokenizer = build_model(args, types)
    affordable = args.sampled_negative_types or args.type_bank_refresh_steps
    if model.encodes_types_with_encoder and not affordable and len(types) > 1000:
        logger.warning(
            f"Every step encodes all {len(types)} type phrases with the encoder (type_space 'encoder'), many times "
            "the cost of the batch itself; --type_bank_refresh_steps 50 re-encodes only the batch's types and takes "
            "the others from a bank refreshed every 50 steps (BENCHMARKS.md measures both cost and quality)."
        )
    type_bank = None
    if args.type_bank_refresh_steps:
        type_bank = TypeBank(
            args.type_bank_refresh_steps,
            args.type_bank_matched_negatives or None,
            args.type_bank_fresh_negatives,
            # each process refreshes its shard of the types and the shards are gathered, instead of all of them
            process_index=accelerator.process_index,
            num_processes=accelerator.num_processes,
            gather=accelerator.gather,
        )
    return model, tokenizer, type_bank


# ------------------------------------------------------------------------------------------------- data, batches
@dataclass
class Splits:
    """Train restricted to the type vocabulary (a stream with --streaming, whose `skipped` report fills up as it is
    read), dev and test as given."""

    train: datasets.Dataset | datasets.IterableDataset
    dev: datasets.Dataset
    test: datasets.Dataset | None
    skipped: SchemaReport
    train_files: list[str]

    @property
    def num_train(self) -> int | str:
        return "streamed" if isinstance(self.train, datasets.IterableDataset) else len(self.train)


def load_data(args: UFETArguments, types: list[str]) -> Splits:
    """The three splits: train without the labels outside `types` (and the records left without any), counted; dev
    (its first --max_validation_samples) and test keep every gold label, and say how many no model can predict."""
    train_files = args.train_files()
    train = load_mentions(train_files, args.data_format, streaming=args.streaming)
    train, skipped = restrict_to_labels(train, types, "train")
    dev = load_mentions(args.validation_file, args.data_format)
    if args.max_validation_samples:
        dev = dev.select(range(min(args.max_validation_samples, len(dev))))
    test = load_mentions(args.test_file, args.data_format) if args.test_file else None
    known = set(types)
    for name, split in (("dev", dev), ("test", test)):
        if split is not None:
            unknown = sum(label not in known for record in split["labels"] for label in record)
            if unknown:
                logger.warning(f"{name}: {unknown} gold labels are outside the type vocabulary.")
    return Splits(train, dev, test, skipped, train_files)


def build_dataloaders(
    splits: Splits, model, tokenizer, accelerator, args: UFETArguments, train_args: TrainingArguments
) -> tuple[DataLoader, DataLoader, DataLoader | None]:
    """Each split in FiveFine's template, batched: train with its label weights and, with NWP, the neighbor-word
    inputs (shuffled; a stream through a shuffle buffer), dev and test plain. Test is None without a test file."""
    encoder = model.get_mention_encoder(tokenizer)
    label2id = model.config.label2id
    # FiveFine's neighbor-word prompts, featurised beside the typing input and collated into the NWP inputs.
    neighbor_words = NeighborWordInputs(encoder) if args.nwp_loss_weight > 0 else None
    if args.streaming:
        train_features = splits.train.map(
            featurize_mentions,
            batched=True,
            with_indices=True,
            fn_kwargs={"encoder": encoder, "label2id": label2id, "extension": neighbor_words},
            remove_columns=["id", "text", "start", "end", "labels", "extra_labels"],
        ).shuffle(seed=train_args.seed, buffer_size=args.shuffle_buffer_size)
    else:
        train_features = featurize_split(splits.train, accelerator, encoder, label2id, "train", neighbor_words)
    pad_multiple = 8 if accelerator.mixed_precision != "no" else None
    train_collator = DataCollatorForEntityTyping(
        tokenizer,
        len(label2id),
        pad_to_multiple_of=pad_multiple,
        original_label_weight=args.original_label_weight,
        extra_label_weight=args.extra_label_weight,
        seed=train_args.seed,
        extension=neighbor_words,
    )
    eval_collator = DataCollatorForEntityTyping(tokenizer, len(label2id), pad_to_multiple_of=pad_multiple)
    train_dataloader = DataLoader(
        train_features,
        shuffle=not args.streaming,
        collate_fn=train_collator,
        batch_size=train_args.per_device_train_batch_size,
    )

    def eval_dataloader(dataset: datasets.Dataset, name: str) -> DataLoader:
        features = featurize_split(dataset, accelerator, encoder, label2id, name)
        return DataLoader(features, collate_fn=eval_collator, batch_size=train_args.per_device_eval_batch_size)

    dev_dataloader = eval_dataloader(splits.dev, "dev")
    test_dataloader = eval_dataloader(splits.test, "test") if splits.test is not None else None
    return train_dataloader, dev_dataloader, test_dataloader


def batch_preparation(
    args: UFETArguments, model, tokenizer, accelerator, type_bank: TypeBank | None
) -> Callable[[dict, int], dict]:
    """The training loop's `prepare_batch` for the prepared `model`: FiveFine's objective on each batch."""
    use_nwp = args.nwp_loss_weight > 0

    def prepare_batch(batch: dict, step: int) -> dict:
        """MLM corruption of the typing input itself, and the NWP inputs only on every `nwp_interval`-th step."""
        if not use_nwp or step % args.nwp_interval != 0:
            for key in NWP_KEYS:
                batch.pop(key, None)
        if args.mlm_loss_weight > 0:
            batch["input_ids"], batch["mlm_labels"] = corrupt_for_mlm(
                batch["input_ids"], tokenizer, args.mlm_probability
            )
        unwrapped = accelerator.unwrap_model(model)
        if args.sampled_negative_types:
            batch = sample_type_columns(batch, unwrapped, args.sampled_negative_types)
        if type_bank is not None:
            batch = type_bank.batch_inputs(batch, unwrapped, step)
        return batch

    return prepare_batch


# ---------------------------------------------------------------------------------------- evaluation, decision
def evaluate_on(model, dataloader: DataLoader, gold: list[list[str]], accelerator, tune: bool = False) -> dict:
    """UFET rule scores; with `tune`, at the dev threshold that maximises macro-F1 (recorded as `threshold`)."""
    config = accelerator.unwrap_model(model).config
    labels_by_id = config.label_list()
    probabilities = predict_probabilities(model, dataloader, accelerator)
    if tune:
        threshold, scores = tune_threshold(probabilities, gold, labels_by_id)
        return {**scores, "threshold": threshold}
    predicted = [[item["label"] for item in decide(row, labels_by_id, "threshold", config.threshold)]
                 for row in probabilities]  # fmt: skip
    return {**typing_scores(predicted, gold), "threshold": config.threshold}


def predict_splits(
    model, dev_dataloader: DataLoader, test_dataloader: DataLoader | None, splits: Splits, accelerator
) -> tuple[dict[str, torch.Tensor], dict[str, list]]:
    """The selected model's logits on dev (and test), and their gold labels, by split."""
    golds = {"dev": splits.dev["labels"]}
    logits = {"dev": predict_logits(model, dev_dataloader, accelerator)}
    if test_dataloader is not None:
        golds["test"] = splits.test["labels"]
        logits["test"] = predict_logits(model, test_dataloader, accelerator)
    return logits, golds


def fit_decision_rule(
    config, state, logits: dict[str, torch.Tensor], golds: dict[str, list], args: UFETArguments
) -> dict | None:
    """Into `config`, all chosen on dev: the selected step's threshold, one per type group with --threshold_groups,
    and with --calibrate the Platt scaling (returns its report; None without it)."""
    if args.tune_threshold and state.best_metrics:
        config.threshold = state.best_metrics["threshold"]
        logger.info(f"Decision threshold chosen on dev: {config.threshold}")
    labels = config.label_list()
    if args.threshold_groups:
        tune_threshold_groups(config, logits["dev"].sigmoid(), golds["dev"], labels, args.threshold_groups)
    return calibrate(config, logits, golds, labels) if args.calibrate else None


def score_splits(
    config, logits: dict[str, torch.Tensor], golds: dict[str, list], group_sizes: list[int] | None
) -> dict[str, dict]:
    """Each split's scores under the model's own rule: its calibrated probabilities at its thresholds."""
    labels = config.label_list()
    thresholds = own_thresholds(config.threshold, config.label_thresholds, labels)
    results = {}
    for split, split_logits in logits.items():
        predicted = [[item["label"] for item in decide(row, labels, "threshold", thresholds)]
                     for row in PlattScaling.of(config).apply(split_logits).sigmoid()]  # fmt: skip
        results[split] = {**typing_scores(predicted, golds[split]), "threshold": config.threshold}
        if config.label_thresholds:
            results[split]["group_thresholds"] = group_thresholds(config, labels, group_sizes)
    return results


def tune_threshold_groups(config, probabilities, gold: list, labels: list[str], group_sizes: list[int]) -> None:
    """A threshold per group of types chosen on dev (the last group's is `config.threshold`, the others' go to
    `config.label_thresholds`), starting from the selected model's single threshold."""
    thresholds, scores = tune_group_thresholds(probabilities, gold, labels, group_sizes, start=config.threshold)
    bounds = [0, *itertools.accumulate(group_sizes)]
    config.label_thresholds = {
        label: thresholds[group]
        for group in range(len(group_sizes))
        for label in labels[bounds[group] : bounds[group + 1]]
    }
    config.threshold = thresholds[-1]
    logger.info(f"Thresholds per type group chosen on dev: {thresholds} (dev macro-F1 {scores['macro_f1']:.4f})")


def group_thresholds(config, labels: list[str], group_sizes: list[int]) -> list[float]:
    """The threshold of each type group (first label of each leading group, then the shared one), as the config holds
    them: after calibration, on the calibrated scale."""
    starts = [0, *itertools.accumulate(group_sizes)][:-1]
    return [config.label_thresholds[labels[start]] for start in starts] + [config.threshold]


def calibrate(config, logits: dict[str, torch.Tensor], golds: dict[str, list], labels: list[str]) -> dict:
    """Fit Platt scaling on the dev logits (each mention's best types), store it in `config` with the threshold
    mapped through it, and report ECE and reliability before and after on every split."""
    gold = {split: gold_matrix(references, labels) for split, references in golds.items()}
    scaling = fit_platt(*top_k_pairs(logits["dev"], gold["dev"]))
    splits = {
        split: {
            "before": calibration_report(split_logits, gold[split], PlattScaling()),
            "after": calibration_report(split_logits, gold[split], scaling),
            "before_top1_ece": calibration_report(split_logits, gold[split], PlattScaling(), k=1)["ece"],
            "after_top1_ece": calibration_report(split_logits, gold[split], scaling, k=1)["ece"],
        }
        for split, split_logits in logits.items()
    }
    config.threshold = scaling.probability(config.threshold)
    if config.label_thresholds:
        config.label_thresholds = {
            label: scaling.probability(value) for label, value in config.label_thresholds.items()
        }
    scaling.write_to(config)
    logger.info(f"Calibration fitted on dev: slope {scaling.slope:.4f}, offset {scaling.offset:.4f}; threshold now "
                f"{config.threshold:.4f}")  # fmt: skip
    top_k = splits["dev"]["after"]["top_k"]
    return {"slope": scaling.slope, "offset": scaling.offset, "fitted_on": "dev", "top_k": top_k, "splits": splits}


# ------------------------------------------------------------------------------------------------------ reporting
def log_run(
    args: UFETArguments, splits: Splits, types: list[str], type_bank: TypeBank | None, accelerator, train_args
) -> None:
    """What is about to be trained, in the accelerate examples' format."""
    global_batch = global_batch_size(accelerator, train_args)
    logger.info("***** Running training *****")
    logger.info(f"  Num examples = {splits.num_train}; types = {len(types)}; files = {len(splits.train_files)}")
    logger.info(f"  Global batch = {global_batch} ({accelerator.num_processes} processes)")
    logger.info(
        f"  Objective: BCE (original x{args.original_label_weight}, extra x{args.extra_label_weight}) "
        f"+ {args.mlm_loss_weight} MLM + {args.nwp_loss_weight} NWP every {args.nwp_interval} steps"
    )
    if type_bank is not None:
        matched = args.type_bank_matched_negatives
        logger.info(f"  Types: the batch's targets and {args.type_bank_fresh_negatives} random others encoded each "
                    f"step, the rest from a bank refreshed every "
                    f"{args.type_bank_refresh_steps} steps, weighted as "
                    f"{f'{matched} sampled negatives' if matched else 'the full loss'}")  # fmt: skip


def report(results: dict[str, dict], calibration: dict | None, state, config, train_args: TrainingArguments) -> None:
    """The scores table and the calibration's effect, on the main process."""
    print(f"\nBest dev step {state.best_step} of {state.step}; macro P / R / F1 in % (threshold {config.threshold})")
    for split, scores in results.items():
        precision, recall, f1 = (100 * scores[key] for key in ("macro_precision", "macro_recall", "macro_f1"))
        print(f"  {split:<5} {precision:6.2f} {recall:6.2f} {f1:6.2f}  ({scores['num_mentions']} mentions)")
    if calibration is not None:
        eces = ", ".join(f"{split} {scores['before']['ece']:.3f} -> {scores['after']['ece']:.3f}"
                         for split, scores in calibration["splits"].items())  # fmt: skip
        print(f"Calibration (ECE of each mention's {calibration['top_k']} best types): {eces}")
    print(f"Saved to {train_args.output_dir}")


if __name__ == "__main__":
    main(sys.argv[1:])
