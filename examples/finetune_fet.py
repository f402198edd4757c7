"""Fine-tune FiveFine (`BertForPhraseTypeTyping`) on a fine-grained schema, from a few examples per type.

Starts from a UFET-trained FiveFine checkpoint or from a plain BERT encoder; trains on all of the training file or on
a seeded k-shot sample; selects the step with the best dev macro-F1 (ties: strict accuracy) under FiveFine's FET
rule (argmax type, plus its ancestors); evaluates on the test file; saves model, tokenizer and `all_results.json`.

    # the demo: 5 examples per type of the bundled CC0 dataset, the MiniLM encoder (what `make demo` runs)
    python examples/finetune_fet.py --output_dir outputs/demo --show_examples

    # FiveFine's OntoNotes 5-shot protocol from a UFET checkpoint, on any accelerate set-up
    accelerate launch examples/finetune_fet.py --model_name_or_path outputs/ufet \\
        --train_file onto_train_fewshot5_0.json --validation_file onto_dev_fewshot5_0.json \\
        --test_file onto_test_ali.json --phrase_table ontonotes --drop_other_label \\
        --per_device_train_batch_size 48 --learning_rate 1e-5 --eval_steps 10 --min_steps 1000 --patience 500 \\
        --max_steps 5000 --output_dir outputs/onto-5shot-0

    # two CPU processes (DDP over gloo)
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 examples/finetune_fet.py ...
"""

import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import datasets
import torch
import transformers
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import HfArgumentParser

import modeling_entity_typing  # noqa: F401  (registers the model and the pipeline)
from modeling_entity_typing import BertForPhraseTypeTyping, MBertForContrastiveTyping
from modeling_entity_typing.calibration import reset_calibration
from modeling_entity_typing.configuration.configuration_fivefine import TypeSpaceName
from modeling_entity_typing.data.mention_data import (
    MentionFormat,
    RightContext,
    detect_format,
    labels_in,
    load_mentions,
    read_label_list,
    restrict_to_labels,
)
from modeling_entity_typing.data.sampling import sample_k_shot
from modeling_entity_typing.decision import DecisionRule, label_ancestors
from modeling_entity_typing.evaluation.scoring import typing_scores
from modeling_entity_typing.fivefine.label_phrases import PHRASE_TABLES, label_phrases_for, read_label_phrases
from modeling_entity_typing.fivefine.mlm_head import cached_encoder_with_mlm_head, has_mlm_head, read_sentences
from modeling_entity_typing.modeling_utils import saved_family_of
from modeling_entity_typing.training import (
    DataCollatorForEntityTyping,
    TrainingArguments,
    build_optimizer,
    build_scheduler,
    check_model_name_or_path,
    choose_interpolation,
    configure_logging,
    create_accelerator,
    default_encoder,
    featurize_split,
    freeze_unused_heads,
    global_batch_size,
    predict_labels,
    save_final,
    snapshot,
    summarize,
    train_with_selection,
)
from modeling_entity_typing.training.training_args import SEED_RANGE, Range, check_ranges


logger = get_logger(__name__)

DEMO_DATA = Path(__file__).parent / "data" / "demo"
DEMO_SENTENCES = [
    ("The Volga carried grain barges south long before the railway reached Kazan.", "The Volga"),
    ("After the merger, Nordwind Logistics cut its prices and hired three hundred drivers.", "Nordwind Logistics"),
    ("Marisol Ortega scored twice in the final minutes and the crowd rushed onto the pitch.", "Marisol Ortega"),
    ("Critics called Blue Lanterns the most daring novel of the decade.", "Blue Lanterns"),
    ("Climbers waited a week at base camp before the weather on Mount Arkell cleared.", "Mount Arkell"),
]


@dataclass
class FineTuneArguments:
    """What to train on and from."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "A FiveFine checkpoint (e.g. UFET-trained) or a BERT encoder; default: the bundled MiniLM."},
    )
    train_file: str = field(default=str(DEMO_DATA / "train.jsonl"), metadata={"help": "Training mentions."})
    validation_file: str = field(default=str(DEMO_DATA / "dev.jsonl"), metadata={"help": "Dev mentions (selection)."})
    test_file: str | None = field(default=str(DEMO_DATA / "test.jsonl"), metadata={"help": "Test mentions."})
    data_format: MentionFormat | None = field(default=None, metadata={"help": "The files' format; default: detected."})
    right_context: RightContext = field(
        default="tokens",
        metadata={
            "help": "'ali' files: right context from the token list ('tokens', correct) or the text field "
            "('text', as FiveFine's loader; its OntoNotes few-shot train files repeat the left context there)."
        },
    )
    labels_file: str | None = field(
        default=None, metadata={"help": "The label set, one label per line; default: the labels of the train file."}
    )
    phrase_table: Literal[tuple(sorted(PHRASE_TABLES))] | None = field(
        default=None, metadata={"help": "FiveFine's label phrases for this dataset's labels."}
    )
    label_phrases_file: str | None = field(
        default=None, metadata={"help": "Your own phrases: 'label<TAB>phrase' per line; wins over --phrase_table."}
    )
    restrict_eval_labels: bool = field(
        default=False,
        metadata={"help": "With --labels_file: drop dev/test gold labels outside it (and mentions left without any)."},
    )
    k_shot: Annotated[int | None, Range(ge=0, note="0 or unset: all of train")] = field(
        default=5, metadata={"help": "Train on k examples per type (0: all of train)."}
    )
    validation_k_shot: Annotated[int | None, Range(ge=0, note="0 or unset: all of dev")] = field(
        default=None, metadata={"help": "Sample the dev file too (default: all)."}
    )
    sample_seed: Annotated[int, SEED_RANGE] = field(default=0, metadata={"help": "Seed of the k-shot samples."})
    drop_other_label: bool = field(
        default=False, metadata={"help": "Train: drop '/other' when a mention has other labels (FiveFine, OntoNotes)."}
    )
    single_path_train: bool = field(
        default=True,
        metadata={"help": "Train on the finest label only, not its ancestors (FiveFine's BBN rule; the recipe's "
                  "default). --no_single_path_train: every label of the path is a target (FiveFine's OntoNotes)."},
    )  # fmt: skip
    model_family: Literal["fivefine", "crossc"] = field(
        default="fivefine",
        metadata={"help": "From a plain encoder: 'fivefine' (phrase types) or 'crossc' ([ENT] markers, type matrix)."},
    )
    threshold: Annotated[float | None, Range(ge=0, le=1, note="a probability; unset: the model's")] = field(
        default=None, metadata={"help": "Probability cut of the 'threshold' rule."}
    )
    metric_for_best_model: Literal["macro_f1", "micro_f1", "strict_accuracy"] = field(
        default="macro_f1", metadata={"help": "Dev metric that selects the step."}
    )
    # Cross-C's shortest template; FiveFine's config asks for 8, and both for at most `max_position_embeddings`.
    max_seq_length: Annotated[int | None, Range(ge=6, note="unset: the model's")] = field(
        default=None, metadata={"help": "Template length in word pieces."}
    )
    decision: DecisionRule = field(
        default="argmax_with_ancestors", metadata={"help": "Decision rule for dev and test."}
    )
    show_examples: bool = field(default=False, metadata={"help": "Print the pipeline's output on new sentences."})
    type_space: TypeSpaceName = field(
        default="encoder",
        metadata={"help": "From a plain encoder: where FiveFine compares mention and type phrase, 'encoder' "
                  "(mean-pooled outputs, for sentence encoders such as the default MiniLM) or 'mlm' (the paper's MLM "
                  "head; its recipe: --learning_rate 2e-4 --head_learning_rate 2e-4)."},
    )  # fmt: skip
    start_recipe: Literal["auto", "keep", "train"] = field(
        default="auto",
        metadata={"help": "How the model's start is kept: 'keep' gives it the training mentions as label examples "
                  "first (FiveFine, encoder type space: the training-free typer, which dev selection can keep) and "
                  "after training keeps start + a (trained - start), a in 0, 0.25, ..., 1 chosen on dev (0: the "
                  "start); 'train' fine-tunes as is; 'auto' (default) is 'keep' from a FiveFine checkpoint that takes "
                  "examples (the winner on OntoNotes dev from the general model, BENCHMARKS.md), 'train' otherwise."},
    )  # fmt: skip
    fit_mlm_head: Literal["auto", "never"] = field(
        default="auto",
        metadata={
            "help": "'auto': a plain encoder without an MLM head (e.g. the default MiniLM) first gets one fitted on "
            "unlabelled sentences, once, cached under --cache_dir; 'never': start from a random head."
        },
    )
    mlm_head_texts: list[str] | None = field(
        default=None,
        metadata={"help": "Unlabelled sentences for that fit (.txt lines or mention files); default: the texts of "
                  "--train_file and --validation_file."},
    )  # fmt: skip
    cache_dir: str | None = field(
        default=None, metadata={"help": "Cache of fitted MLM heads; default: ~/.cache/modeling_entity_typing."}
    )

    def __post_init__(self):
        check_ranges(self)
        self.test_file = self.test_file or None  # `--test_file ""`: no test set
        check_model_name_or_path(self.model_name_or_path)
        if self.restrict_eval_labels and not self.labels_file:
            raise ValueError("--restrict_eval_labels needs --labels_file (the label set to restrict to).")
        for path in self.mlm_head_texts or []:
            if not Path(path).is_file():
                raise FileNotFoundError(f"--mlm_head_texts: no file at {path}.")
        for name in ("train_file", "validation_file", "test_file", "labels_file", "label_phrases_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"--{name}: no file at {path}.")


def parse_args(argv: list[str] | None = None) -> tuple[FineTuneArguments, TrainingArguments]:
    parser = HfArgumentParser((FineTuneArguments, TrainingArguments))
    # The recipe chosen on OntoNotes 5-shot dev data (BENCHMARKS.md, "Recipe experiments"): FiveFine's protocol
    # (dev every 10 steps, min steps, patience) scaled to 2 CPU cores, finest-label targets, the encoder type space
    # at lr 5e-5 (2e-5 and 1e-4 scored lower on dev) with its score scale and bias at 1e-2, and the starting model
    # in the selection. The paper's MLM type space scored best at lr 2e-4 for all weights. The paper: batch 48,
    # lr 1e-5, >= 1000 steps, patience 500, from a model trained on 20M weak UFET mentions.
    parser.set_defaults(
        per_device_train_batch_size=16,
        learning_rate=5e-5,
        head_learning_rate=1e-2,
        max_steps=150,
        eval_steps=10,
        min_steps=80,
        patience=40,
        eval_at_start=True,
    )
    return parser.parse_args_into_dataclasses(args=argv)


def main(argv: list[str] | None = None) -> dict:
    args, train_args = parse_args(argv)
    accelerator = create_accelerator(train_args)  # checks --output_dir before any data is loaded
    configure_logging(accelerator)
    set_seed(train_args.seed)

    splits, labels = load_data(args)
    label_phrases = label_phrases_of(labels, args)
    model, tokenizer = build_model(args, label_phrases, accelerator, train_args.seed)
    keep_start = keeps_the_start(args, model)
    if keep_start:
        start_with_label_examples(model, tokenizer, label_phrases, splits.train)
    start = snapshot(model) if keep_start else None
    # Building from a plain encoder and from a checkpoint draw different amounts of randomness; seeding again makes
    # dropout and batch order depend on the seed alone, so two encoders compared under one seed see the same stream.
    set_seed(train_args.seed)
    train_dataloader, dev_dataloader, test_dataloader = build_dataloaders(
        splits, model, tokenizer, accelerator, train_args
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
        accelerator.init_trackers("finetune_fet", {**vars(args), **vars(train_args)})

    def evaluate(dataloader: DataLoader, gold: list[list[str]]) -> dict:
        return evaluate_on(model, dataloader, gold, accelerator, args.decision)

    log_run(splits, labels, accelerator, train_args)
    dev_gold = splits.dev["labels"]
    selection_keys = (args.metric_for_best_model, "strict_accuracy")
    state = train_with_selection(
        accelerator,
        model,
        optimizer,
        train_dataloader,
        lambda _: evaluate(dev_dataloader, dev_gold),
        train_args,
        lr_scheduler=lr_scheduler,
        selection_keys=selection_keys,
        script_args=args,  # recorded with each checkpoint, checked on resume
    )

    interpolation = None
    if start is not None:
        weight, scored = choose_interpolation(
            accelerator.unwrap_model(model), start, lambda: evaluate(dev_dataloader, dev_gold), selection_keys
        )
        interpolation = {"weight": weight, "dev": scored}
        logger.info(f"Interpolation with the start chosen on dev: start + {weight} x (trained - start)")

    # ---- final evaluation of the selected dev weights, then save
    results = {"dev": evaluate(dev_dataloader, dev_gold)}
    if test_dataloader is not None:
        results["test"] = evaluate(test_dataloader, splits.test["labels"])
    summary = summarize(
        results,
        state,
        accelerator,
        train_args,
        model_type=accelerator.unwrap_model(model).config.model_type,
        k_shot=args.k_shot or None,
        sample_seed=args.sample_seed if args.k_shot else None,
        train_examples=len(splits.train),
        num_types=len(labels),
        start_recipe="keep" if keep_start else "train",
        interpolation=interpolation,
    )
    accelerator.unwrap_model(model).config.decision = args.decision
    save_final(accelerator, model, tokenizer, train_args.output_dir, summary)
    if accelerator.is_main_process:
        report(results, state, args, train_args, accelerator.unwrap_model(model), tokenizer)
    accelerator.end_training()  # stops any trackers; every process leaves the process group together
    return summary


# ------------------------------------------------------------------------------------------------ data, labels
@dataclass
class Splits:
    train: datasets.Dataset
    dev: datasets.Dataset
    test: datasets.Dataset | None


def load_data(args: FineTuneArguments) -> tuple[Splits, list[str]]:
    """The three splits and the label set: train restricted to the label set, k-shot sampled, in FiveFine's target
    form; dev and test as given (or restricted, with --restrict_eval_labels)."""
    train = load_split(args.train_file, args, "train")
    dev = load_split(args.validation_file, args, "dev")
    test = load_split(args.test_file, args, "test") if args.test_file else None
    label_set = read_label_list(args.labels_file) if args.labels_file else None
    if label_set is not None:  # sample k per type of the given label set, not of every label the file happens to use
        if not label_set:
            raise ValueError(f"--labels_file {args.labels_file} lists no label; write one label per line.")
        train = restrict_to_label_file(train, label_set, args, "train")
        if args.restrict_eval_labels:
            dev = restrict_to_label_file(dev, label_set, args, "dev")
            test = restrict_to_label_file(test, label_set, args, "test") if test else None
    if args.k_shot:
        sample = sample_k_shot(train["labels"], args.k_shot, args.sample_seed)
        train = train.select(sample.indices)
        logger.info(f"train: {len(train)} mentions sampled, {args.k_shot} per type (seed {args.sample_seed})")
    if args.validation_k_shot:
        dev = dev.select(sample_k_shot(dev["labels"], args.validation_k_shot, args.sample_seed).indices)
    train = training_targets(train, args)
    # Default label set: the training targets (with --single_path_train, ancestors that are never a target are
    # left out; predictions still get them back through the decision rule).
    labels = label_set if label_set is not None else labels_in(train)
    train, _ = restrict_to_labels(train, labels, "train")
    if len(train) == 0:  # without --labels_file: no training mention has any label
        raise ValueError(f"--train_file {args.train_file}: no mention has a label to train on.")
    warn_unpredictable_labels(labels, {"dev": dev, "test": test})
    return Splits(train, dev, test), labels


SPLIT_OPTIONS = {"train": "--train_file", "dev": "--validation_file", "test": "--test_file"}


def restrict_to_label_file(
    dataset: datasets.Dataset, label_set: list[str], args: FineTuneArguments, name: str
) -> datasets.Dataset:
    """`dataset` without the labels outside --labels_file (and the mentions left without one); refused when no
    mention would be left, which would otherwise fail much later, in featurisation, with a datasets error."""
    restricted, _ = restrict_to_labels(dataset, label_set, name)
    if len(restricted):
        return restricted
    option = SPLIT_OPTIONS[name]
    used = Counter(label for labels in dataset["labels"] for label in labels)
    fix = (
        "Pass the label set of this training data (or leave --labels_file out to train on the labels of --train_file)"
        if name == "train"
        else f"Pass a --labels_file whose labels this {name} file uses, or leave out --restrict_eval_labels"
    )
    raise ValueError(
        f"No {name} mention has a label of --labels_file {args.labels_file} ({len(label_set)} labels: "
        f"{_some(label_set)}): the {len(dataset)} mentions of {option} {getattr(args, option[2:])} use "
        f"{len(used)} label(s), none of them in that file (most frequent: "
        f"{_some([label for label, _ in used.most_common()])}). {fix}; check that both files spell labels alike "
        "(e.g. '/person/artist' and 'person/artist' differ)."
    )


def _some(items: list[str], count: int = 5) -> str:
    """The first `count` items, comma-separated, with '...' when there are more."""
    return ", ".join(items[:count]) + (", ..." if len(items) > count else "")


def load_split(path: str, args: FineTuneArguments, name: str) -> datasets.Dataset:
    data_format = args.data_format or detect_format(path)
    options = {"right_context": args.right_context} if data_format == "ali" else {}
    dataset = load_mentions(path, data_format, **options)
    logger.info(f"{name}: {len(dataset)} mentions from {path}")
    return dataset


def training_targets(dataset: datasets.Dataset, args: FineTuneArguments) -> datasets.Dataset:
    """FiveFine's FET target rules: drop `/other` next to other labels; or keep only the finest label."""

    def transform(labels: list[str]) -> list[str]:
        if args.drop_other_label and len(labels) > 1:
            labels = [label for label in labels if label != "/other"] or labels
        if args.single_path_train:
            ancestors = {ancestor for label in labels for ancestor in label_ancestors(label)}
            labels = [label for label in labels if label not in ancestors]
        return labels

    return dataset.map(lambda record: {"labels": transform(record["labels"])}, desc="training targets")


def warn_unpredictable_labels(labels: list[str], splits: dict[str, datasets.Dataset | None]) -> None:
    """Gold labels that are neither in the label set nor an ancestor of one cost recall whatever the model does."""
    predictable = set(labels) | {ancestor for label in labels for ancestor in label_ancestors(label)}
    for name, split in splits.items():
        if split is not None:
            gold = [label for record in split["labels"] for label in record]
            unknown = sum(label not in predictable for label in gold)
            if unknown and unknown == len(gold):
                logger.warning(
                    f"{name}: none of its {unknown} gold labels is in the label set or an ancestor of one; every "
                    f"{name} score will be 0. Check that --labels_file (or --train_file) and this file share a schema."
                )
            elif unknown:
                logger.warning(f"{name}: {unknown} gold labels are outside the label set; no model can predict them.")


def label_phrases_of(labels: list[str], args: FineTuneArguments) -> dict[str, str]:
    """The phrase each label is typed as: --label_phrases_file, else --phrase_table, else FiveFine's default."""
    overrides = read_label_phrases(args.label_phrases_file) if args.label_phrases_file else None
    return label_phrases_for(labels, args.phrase_table, overrides)


# ------------------------------------------------------------------------------------------------------- model
def keeps_the_start(args: FineTuneArguments, model) -> bool:
    """Whether the run keeps its start: `--start_recipe keep`, or `auto` from a FiveFine checkpoint taking examples."""
    if args.start_recipe == "auto":
        name = args.model_name_or_path or default_encoder()
        keep = saved_family_of(name) is not None and model.supports_label_examples
        start = "a trained typer that takes label examples" if keep else "not a trained typer with examples"
        logger.info(f"--start_recipe auto: {'keep' if keep else 'train'} (the start is {start})")
        return keep
    return args.start_recipe == "keep"


def start_with_label_examples(model, tokenizer, label_phrases: dict[str, str], train: datasets.Dataset) -> None:
    """The training mentions as the model's label examples (each an example of its training targets)."""
    if not model.supports_label_examples:
        raise ValueError(
            f"--start_recipe keep: {type(model).__name__} in this configuration takes no label examples (FiveFine "
            "in the encoder type space does); pass --start_recipe train."
        )
    examples: dict[str, list[tuple[str, int, int]]] = {}
    for record in train:
        for label in record["labels"]:
            examples.setdefault(label, []).append((record["text"], record["start"], record["end"]))
    model.set_label_set(label_phrases, tokenizer, examples=examples)
    logger.info(f"Label examples: {len(train)} training mentions for {len(examples)} of {len(label_phrases)} labels")


def encoder_with_mlm_head(name: str, args: FineTuneArguments, accelerator) -> str:
    """FiveFine reads types at a mask through the MLM head: a plain encoder without one gets a fitted head first
    (built once on the main process, cached, reused by every later run with the same encoder and sentences)."""
    if args.fit_mlm_head == "never" or args.model_family != "fivefine" or args.type_space != "mlm":
        return name
    if saved_family_of(name) is not None or has_mlm_head(name):  # a trained typer has its head
        return name
    sentences = read_sentences(args.mlm_head_texts or [args.train_file, args.validation_file])
    with accelerator.main_process_first():
        return str(cached_encoder_with_mlm_head(name, sentences, args.cache_dir))


# The families --model_family names, and the config fields a new model of each starts with from a plain encoder:
# FiveFine in --type_space, without the NWP head (fine-tuning does not use it).
FAMILIES = {"fivefine": BertForPhraseTypeTyping, "crossc": MBertForContrastiveTyping}
NEW_MODEL_OVERRIDES = {
    "fivefine": lambda args: {"nwp_loss_weight": 0.0, "type_space": args.type_space},
    "crossc": lambda args: {},
}


def build_model(args: FineTuneArguments, label_phrases: dict[str, str], accelerator, seed: int):
    name = encoder_with_mlm_head(args.model_name_or_path or default_encoder(), args, accelerator)
    overrides = {"decision": args.decision}
    if args.max_seq_length:
        overrides["max_seq_length"] = args.max_seq_length
    # A trained typer keeps its weights (and its family) with the new label set; a plain encoder starts a model of
    # --model_family. Weights of new labels (Cross-C's type rows) come from a generator seeded by the run's seed, so
    # they are the same on both paths: a pretrained encoder and the plain one it started from compare on equal terms.
    family = saved_family_of(name) or FAMILIES[args.model_family]
    model, tokenizer = family.for_labels(
        name,
        label_phrases,
        new_model_overrides=NEW_MODEL_OVERRIDES[args.model_family](args),
        label_set_options={"generator": torch.Generator().manual_seed(seed)},
        **overrides,
    )
    reset_calibration(model.config)  # fitted to the scores of other labels
    if args.threshold is not None:
        model.config.threshold = args.threshold
    frozen = freeze_unused_heads(model)  # fine-tuning trains no auxiliary term (MLM, NWP)
    logger.info(f"Model from {name}; frozen (unused by fine-tuning): {frozen}")
    return model, tokenizer


# ---------------------------------------------------------------------------------------- features, evaluation
def build_dataloaders(
    splits: Splits, model, tokenizer, accelerator, train_args: TrainingArguments
) -> tuple[DataLoader, DataLoader, DataLoader | None]:
    """Each split in the model's input template, batched (train shuffled); test is None without a test file."""
    encoder = model.get_mention_encoder(tokenizer)
    label2id = model.config.label2id
    pad_multiple = 8 if accelerator.mixed_precision != "no" else None
    collator = DataCollatorForEntityTyping(tokenizer, len(label2id), pad_to_multiple_of=pad_multiple)

    def dataloader(dataset: datasets.Dataset, name: str, **options) -> DataLoader:
        features = featurize_split(dataset, accelerator, encoder, label2id, name)
        return DataLoader(features, collate_fn=collator, **options)

    eval_batch = train_args.per_device_eval_batch_size
    train = dataloader(splits.train, "train", shuffle=True, batch_size=train_args.per_device_train_batch_size)
    dev = dataloader(splits.dev, "dev", batch_size=eval_batch)
    test = dataloader(splits.test, "test", batch_size=eval_batch) if splits.test is not None else None
    return train, dev, test


def evaluate_on(model, dataloader: DataLoader, gold: list[list[str]], accelerator, decision: str) -> dict:
    """Hierarchical typing scores of the model's predictions (under `decision`) against `gold`."""
    config = accelerator.unwrap_model(model).config
    labels_by_id = [config.id2label[index] for index in range(len(config.label2id))]
    predictions = predict_labels(model, dataloader, accelerator, labels_by_id, decision, config.threshold)
    return typing_scores(predictions, gold, hierarchical=True)


# ---------------------------------------------------------------------------------------------------- reporting
def log_run(splits: Splits, labels: list[str], accelerator, train_args: TrainingArguments) -> None:
    """What is about to be trained, in the accelerate examples' format."""
    logger.info("***** Running training *****")
    logger.info(f"  Num examples = {len(splits.train)}; types = {len(labels)}")
    global_batch = global_batch_size(accelerator, train_args)
    logger.info(f"  Global batch = {global_batch} ({accelerator.num_processes} processes)")
    logger.info(
        f"  Max steps = {train_args.max_steps}; min steps = {train_args.min_steps}; patience = {train_args.patience}"
    )


def report(results: dict[str, dict], state, args: FineTuneArguments, train_args: TrainingArguments, model, tokenizer):
    """The scores table (and, with --show_examples, predictions on new sentences), on the main process."""
    print(f"\nBest dev step {state.best_step} of {state.step}; scores in % under the {args.decision!r} rule")
    print(format_table(results))
    if args.show_examples:
        show_examples(model, tokenizer)
    print(f"\nSaved to {train_args.output_dir}")


def format_table(results: dict[str, dict]) -> str:
    columns = ["strict_accuracy", "micro_f1", "macro_precision", "macro_recall", "macro_f1"]
    header = f"{'split':<8}" + "".join(f"{column:>17}" for column in columns) + f"{'mentions':>10}"
    rows = [
        f"{split:<8}"
        + "".join(f"{100 * scores[column]:>17.2f}" for column in columns)
        + f"{scores['num_mentions']:>10}"
        for split, scores in results.items()
    ]
    return "\n".join([header, *rows])


def show_examples(model, tokenizer) -> None:
    pipe = transformers.pipeline("entity-typing", model=model, tokenizer=tokenizer, device=model.device)
    print("\nPredictions on new sentences:")
    outputs = pipe([{"text": text, "span": mention} for text, mention in DEMO_SENTENCES])
    for (text, mention), output in zip(DEMO_SENTENCES, outputs):
        labels = ", ".join(f"{item['label']} ({item['score']:.2f})" for item in output["labels"])
        print(f"  {mention!r:24} -> {labels}\n      in: {text}")


if __name__ == "__main__":
    main(sys.argv[1:])
