"""Cross-C contrastive pretraining of `MBertForContrastiveTyping` on distantly supervised positive groups.

Each batch takes `--seeds_per_batch` groups (entity-pair rule groups, see `examples/build_contrastive_data.py`), one
seed example and up to `--positives_per_seed` positives from each, plus the seed's translations; each mention is
replaced by `[MASK]` with probability `mention_mask_probability` (0.5). The loss is the weighted sum of the
mono-lingual terms (source language: `--source_mono_weight`, the paper's "ec"; other languages:
`--target_mono_weight`, "zc") and the cross-lingual term (`--cross_weight`, "cc"); a zero weight is the ablation.
Under DDP the negatives come from every process. The step whose mention vectors best retrieve a same-group
mention on held-out groups (dev precision@1) is kept. Fine-tune the result with `examples/finetune_fet.py`.

    python examples/build_contrastive_data.py --corpus corpus.jsonl --kb kb.tsv --translate_to zh \\
        --translator Helsinki-NLP/opus-mt-en-zh --output distant.jsonl
    accelerate launch examples/pretrain_contrastive.py --model_name_or_path bert-base-multilingual-cased \\
        --train_file distant.jsonl --output_dir outputs/crossc-pretrained
    accelerate launch examples/finetune_fet.py --model_name_or_path outputs/crossc-pretrained \\
        --train_file en_train.jsonl --validation_file en_dev.jsonl --test_file zh_test.jsonl --k_shot 8 ...
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import datasets
import torch
import torch.nn.functional as F
from accelerate.logging import get_logger
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import HfArgumentParser

import modeling_entity_typing  # noqa: F401  (registers the models and the pipeline)
from modeling_entity_typing import MBertForContrastiveTyping
from modeling_entity_typing.configuration import CONTRASTIVE_DENOMINATORS
from modeling_entity_typing.crossc.contrastive import ContrastivePretrainer, ContrastiveWeights, lang_vocabulary
from modeling_entity_typing.crossc.contrastive_batches import (
    DataCollatorForContrastive,
    GroupBatchSampler,
    mask_mentions,
)
from modeling_entity_typing.training import (
    TrainingArguments,
    build_optimizer,
    build_scheduler,
    check_model_name_or_path,
    configure_logging,
    create_accelerator,
    default_encoder,
    gather_predictions,
    save_final,
    step_seed,
    summarize,
    train_with_selection,
)
from modeling_entity_typing.training.training_args import Range, check_ranges


logger = get_logger(__name__)

REQUIRED_COLUMNS = {"id", "text", "start", "end", "lang", "group_id"}
WEIGHT_RANGE = Range(ge=0, note="0 removes the term")


@dataclass
class ContrastiveArguments:
    """Data, encoder and the contrastive objective."""

    train_file: str = field(metadata={"help": "Mention examples (JSON lines from build_contrastive_data.py)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A (multilingual) BERT or a Cross-C checkpoint; default: the bundled MiniLM."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "Held-out examples; default: --validation_groups of the train groups."}
    )
    validation_groups: Annotated[float, Range(gt=0, lt=1)] = field(
        default=0.1, metadata={"help": "Share of groups held out for dev."}
    )
    source_lang: str = field(default="en", metadata={"help": "The language translations were made from."})
    seeds_per_batch: Annotated[int, Range(ge=2, note="the other groups of a batch are its negatives")] = field(
        default=8, metadata={"help": "N: groups per batch (per process)."}
    )
    positives_per_seed: Annotated[int, Range(ge=1)] = field(
        default=3, metadata={"help": "K: positives drawn per seed example."}
    )
    source_mono_weight: Annotated[float, WEIGHT_RANGE] = field(
        default=1.0, metadata={"help": "Source-language term (ec); 0 = -ec."}
    )
    target_mono_weight: Annotated[float, WEIGHT_RANGE] = field(
        default=1.0, metadata={"help": "Target-language terms (zc); 0 = -zc."}
    )
    cross_weight: Annotated[float, WEIGHT_RANGE] = field(
        default=1.0, metadata={"help": "Cross-lingual term (cc); 0 = -cc."}
    )
    temperature: Annotated[float | None, Range(gt=0, note="unset: the config's")] = field(
        default=None, metadata={"help": "τ (default: the config's, 0.5)."}
    )
    denominator: Literal[CONTRASTIVE_DENOMINATORS] | None = field(
        default=None, metadata={"help": "'pos+neg' (paper) or 'neg' (code); default: the config's."}
    )
    mention_mask_probability: Annotated[float | None, Range(ge=0, le=1, note="unset: the config's")] = field(
        default=None, metadata={"help": "Default: the config's, 0.5."}
    )
    # Cross-C's config: a marked input of at least 6 word pieces, at most `max_position_embeddings`.
    max_seq_length: Annotated[int | None, Range(ge=6, note="unset: the model's")] = field(
        default=None, metadata={"help": "Marked input length in word pieces."}
    )

    def __post_init__(self):
        check_ranges(self)
        check_model_name_or_path(self.model_name_or_path)
        for name in ("train_file", "validation_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise FileNotFoundError(f"--{name}: no file at {path}.")
        if self.source_mono_weight + self.target_mono_weight + self.cross_weight == 0:
            raise ValueError("All three objective weights are 0: nothing to train.")


def parse_args(argv: list[str] | None = None) -> tuple[ContrastiveArguments, TrainingArguments]:
    parser = HfArgumentParser((ContrastiveArguments, TrainingArguments))
    parser.set_defaults(learning_rate=2e-5, max_steps=500, eval_steps=50, weight_decay=0.0)
    return parser.parse_args_into_dataclasses(args=argv)


def load_examples(path: str) -> datasets.Dataset:
    """Mention examples with the required columns; `source_id` added as None when absent."""
    dataset = datasets.load_dataset("json", data_files=path, split="train")
    missing = REQUIRED_COLUMNS - set(dataset.column_names)
    if missing:
        raise ValueError(
            f"{path}: the examples lack the columns {sorted(missing)}; write them with "
            "examples/build_contrastive_data.py (one JSON object per line with id, text, start, end, lang, group_id)."
        )
    if "source_id" not in dataset.column_names:
        dataset = dataset.add_column("source_id", [None] * len(dataset))
    return dataset


def split_by_group(dataset: datasets.Dataset, share: float, seed: int) -> tuple[datasets.Dataset, datasets.Dataset]:
    """Hold out whole groups (a held-out mention's positives must be held out with it)."""
    group_of_row = list(dataset["group_id"])
    groups = sorted(set(group_of_row))
    generator = torch.Generator().manual_seed(seed)
    held_out = {
        groups[i] for i in torch.randperm(len(groups), generator=generator)[: max(2, int(share * len(groups)))]
    }
    flags = [group in held_out for group in group_of_row]
    dev_rows = [row for row, flag in enumerate(flags) if flag]
    train_rows = [row for row, flag in enumerate(flags) if not flag]
    return dataset.select(train_rows), dataset.select(dev_rows)


def build_model(args: ContrastiveArguments):
    name = args.model_name_or_path or default_encoder()
    overrides = {
        key: value
        for key, value in (
            ("contrastive_temperature", args.temperature),
            ("contrastive_denominator", args.denominator),
            ("mention_mask_probability", args.mention_mask_probability),
            ("max_seq_length", args.max_seq_length),
        )
        if value is not None
    }
    # A Cross-C checkpoint keeps its label set. Pretraining learns no types: a plain encoder gets one placeholder row,
    # which keeps the model well formed until fine-tuning sets labels (`set_label_set` never keeps it, so fine-tuning
    # starts every type row fresh, as from the plain encoder).
    return MBertForContrastiveTyping.for_labels(name, None, **overrides)


def featurize(dataset: datasets.Dataset, model, tokenizer, groups: dict, langs: dict, accelerator, name: str):
    encoder = model.get_mention_encoder(tokenizer)

    def encode(batch: dict, indices: list[int]) -> dict:
        mentions = list(zip(batch["text"], batch["start"], batch["end"]))
        plain, masked = encoder.encode_batch(mentions), encoder.encode_batch(mentions, mask_mention=True)
        return {
            "index": indices,
            "input_ids": [item.input_ids for item in plain],
            "mention_position": [item.mention_position for item in plain],
            "masked_input_ids": [item.input_ids for item in masked],
            "masked_mention_position": [item.mention_position for item in masked],
            "group_index": [groups[group] for group in batch["group_id"]],
            "lang_index": [langs[lang] for lang in batch["lang"]],
        }

    with accelerator.main_process_first():
        return dataset.map(
            encode, batched=True, with_indices=True, remove_columns=dataset.column_names, desc=f"marking {name}"
        )


@torch.no_grad()
def group_precision_at_1(model, dataloader, accelerator, mention_keys: list) -> float:
    """Share of dev mentions whose nearest other mention (cosine; copies of the same span excluded) is in its group."""
    model.eval()
    rows = []
    for batch in dataloader:
        index = batch["example_ids"]
        vectors = accelerator.unwrap_model(model).model.embed_mentions(
            batch["input_ids"], batch["attention_mask"], batch["mention_positions"]
        )
        rows.extend(zip(index.tolist(), list(zip(vectors.float().cpu(), batch["group_ids"].tolist()))))
    model.train()
    gathered = gather_predictions(rows, accelerator)
    vectors = F.normalize(torch.stack([vector for vector, _ in gathered]), dim=-1)
    groups = torch.tensor([group for _, group in gathered])
    similarity = vectors @ vectors.T
    key_ids = {key: i for i, key in enumerate(dict.fromkeys(mention_keys))}
    keys = torch.tensor([key_ids[key] for key in mention_keys])
    similarity.masked_fill_(keys[:, None] == keys[None, :], float("-inf"))  # self and copies of the same span
    has_other = torch.isfinite(similarity).any(dim=1)
    nearest = similarity.argmax(dim=1)
    return float((groups[nearest] == groups)[has_other].float().mean())


def main(argv: list[str] | None = None) -> dict:
    args, train_args = parse_args(argv)
    accelerator = create_accelerator(train_args)
    configure_logging(accelerator)
    set_seed(train_args.seed)

    examples = load_examples(args.train_file)
    if args.validation_file:
        train, dev = examples, load_examples(args.validation_file)
    else:
        train, dev = split_by_group(examples, args.validation_groups, train_args.seed)
    langs = lang_vocabulary([*train["lang"], *dev["lang"]], args.source_lang)
    groups = {group: index for index, group in enumerate(sorted({*train["group_id"], *dev["group_id"]}))}
    logger.info(f"train: {len(train)} examples; dev: {len(dev)}; {len(groups)} groups; languages {langs}")

    model, tokenizer = build_model(args)
    model.type_matrix.weight.requires_grad_(False)  # no labels in pretraining; DDP needs every trainable weight used
    pretrainer = ContrastivePretrainer(
        model,
        ContrastiveWeights(args.source_mono_weight, args.target_mono_weight, args.cross_weight),
        source_lang_id=langs[args.source_lang],
    )
    train_features = featurize(train, model, tokenizer, groups, langs, accelerator, "train")
    dev_features = featurize(dev, model, tokenizer, groups, langs, accelerator, "dev")
    sampler = GroupBatchSampler(
        list(train["group_id"]), args.seeds_per_batch, args.positives_per_seed, list(train["id"]),
        list(train["source_id"]),
        seed=train_args.seed,
    )  # fmt: skip
    if sampler.skipped_groups:
        logger.warning(f"train: {sampler.skipped_groups} groups with a single example cannot give positives; unused.")
    pad_multiple = 8 if accelerator.mixed_precision != "no" else None
    collator = DataCollatorForContrastive(tokenizer, pad_multiple)
    train_dataloader = DataLoader(train_features, batch_sampler=sampler, collate_fn=collator)
    dev_collator = DataCollatorForContrastive(tokenizer, pad_multiple, with_masked=False)
    dev_dataloader = DataLoader(
        dev_features, batch_size=train_args.per_device_eval_batch_size, collate_fn=dev_collator
    )

    optimizer = build_optimizer(pretrainer, train_args.learning_rate, train_args.weight_decay)
    lr_scheduler = build_scheduler(optimizer, train_args, accelerator)
    pretrainer, optimizer, train_dataloader, dev_dataloader, lr_scheduler = accelerator.prepare(
        pretrainer, optimizer, train_dataloader, dev_dataloader, lr_scheduler
    )
    dev_keys = list(zip(dev["text"], dev["start"], dev["end"]))
    logger.info(
        f"***** Contrastive pretraining: {len(sampler)} batches per epoch of {args.seeds_per_batch} groups, "
        f"{accelerator.num_processes} processes, max {train_args.max_steps} steps *****"
    )

    def prepare_batch(batch: dict, step: int) -> dict:
        # Masks depend on (seed, step, process) only, so a resumed run masks exactly as an uninterrupted one.
        generator = torch.Generator().manual_seed(step_seed(train_args.seed, step, accelerator.process_index))
        return mask_mentions(batch, model.config.mention_mask_probability, generator)

    state = train_with_selection(
        accelerator,
        pretrainer,
        optimizer,
        train_dataloader,
        lambda _: {"group_precision_at_1": group_precision_at_1(pretrainer, dev_dataloader, accelerator, dev_keys)},
        train_args,
        lr_scheduler=lr_scheduler,
        prepare_batch=prepare_batch,
        selection_keys=("group_precision_at_1",),
        script_args=args,  # recorded with each checkpoint, checked on resume
    )
    results = {
        "dev": {"group_precision_at_1": group_precision_at_1(pretrainer, dev_dataloader, accelerator, dev_keys)}
    }
    summary = summarize(
        results, state, accelerator, train_args, train_examples=len(train), groups=len(groups), languages=langs
    )
    save_final(accelerator, accelerator.unwrap_model(pretrainer).model, tokenizer, train_args.output_dir, summary)
    if accelerator.is_main_process:
        print(f"\nBest dev step {state.best_step} of {state.step}; dev group precision@1 {results['dev']}")
        print(f"Saved to {train_args.output_dir}")
    accelerator.end_training()  # stops any trackers; every process leaves the process group together
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
