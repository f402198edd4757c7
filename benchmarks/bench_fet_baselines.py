"""The free baselines every trained FET model must beat, on FiveFine's OntoNotes 5-shot splits (same data and metric
as `bench_fet_fewshot.py`: argmax type plus its ancestors; strict accuracy, loose micro-F1, loose macro-F1).

* `prototype`: frozen encoder vectors (mention word pieces mean-pooled, concatenated with the sentence mean), one
  prototype per type = the mean vector of its training examples (finest label), nearest prototype by cosine.
* `logreg`: logistic regression (scikit-learn) on the same frozen vectors and finest labels.
* `mask_prototype`: a diagnostic, not a baseline: nearest prototype on FiveFine's own frozen mention vectors (the
  MLM transform at the typing mask of its template), which shows how much the mask slot knows before training.
* `zero_shot_mlm`: no labelled example. FiveFine's template read by the encoder with a fitted MLM head; a type's
  score is the mean log-probability of its phrase's word pieces at the typing mask.
* `zero_shot_fivefine`: no labelled example. The package's own zero-shot path: a FiveFine model never fine-tuned on
  these labels (built from that encoder in `--type_space`, or a FiveFine checkpoint such as the UFET model), typing
  through `pipeline(..., candidate_labels=...)`.
* `label_examples`: no training. The package's label examples: the same zero-shot FiveFine model in the encoder type
  space given each split's 5-shot training file as examples (`set_label_set(phrases, tokenizer, examples=...)`),
  scored as `embed_mentions @ type_embeddings().T` (what the pipeline computes) at each phrase weight
  `label_example_weight` in 0, 0.1, ..., 1 (phrase and examples' prototype both at unit length): test scores at fixed
  weights, and at the weight each split's dev file chooses (best dev micro-F1, ties to the larger weight). A training
  mention is an example of its finest label only (`finest_label`, as the prototype baseline) and, for comparison, of
  every label it has (`every_label`, as a labelled file gives them).

    python benchmarks/bench_fet_baselines.py --method prototype --output benchmarks/results/onto_prototype.json
    python benchmarks/bench_fet_baselines.py --method zero_shot_fivefine --type_space encoder \\
        --output benchmarks/results/onto_zero_shot_fivefine_encoder.json
    python benchmarks/bench_fet_baselines.py --method label_examples \\
        --output benchmarks/results/onto_label_examples_plain.json
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from common import DEFAULT_DATA_DIR, machine, report
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer, pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)
from modeling_entity_typing import BertForPhraseTypeTyping
from modeling_entity_typing.data.mention_data import load_mentions
from modeling_entity_typing.decision import label_ancestors
from modeling_entity_typing.evaluation.scoring import typing_scores
from modeling_entity_typing.fivefine.label_phrases import label_phrases_for
from modeling_entity_typing.training import default_encoder


METHODS = ("prototype", "logreg", "mask_prototype", "zero_shot_mlm", "zero_shot_fivefine", "label_examples")
METRICS = {"strict_accuracy": "Acc", "micro_f1": "Mi-F1", "macro_f1": "Ma-F1"}
WEIGHT_GRID = tuple(step / 10 for step in range(11))  # `label_example_weight` chosen on dev among these
FIXED_WEIGHTS = (1.0, 0.8, 0.6, 0.5, 0.0)  # reported on test


def onto_paths(data_dir: Path) -> dict:
    folder = data_dir / "fivefine" / "alifet" / "ontonotes"
    return {
        "train": lambda split: folder / f"onto_train_fewshot5_{split}.json",
        "dev": lambda split: folder / f"onto_dev_fewshot5_{split}.json",
        "test": folder / "onto_test_ali.json",
        "labels": folder / "onto_type_vocab_ali.txt",
    }


def read_labels(path: Path) -> list[str]:
    return list(dict.fromkeys(line.strip() for line in path.read_text().splitlines() if line.strip()))


def finest_label(labels: list[str]) -> str:
    """FiveFine's training target rules for one example: `/other` dropped next to other labels, finest label kept."""
    if len(labels) > 1:
        labels = [label for label in labels if label != "/other"] or labels
    ancestors = {ancestor for label in labels for ancestor in label_ancestors(label)}
    return sorted(label for label in labels if label not in ancestors)[0]


def with_ancestors(label: str) -> list[str]:
    return [label, *label_ancestors(label)]


@torch.no_grad()
def frozen_vectors(encoder, tokenizer, records, batch_size: int = 64) -> torch.Tensor:
    """Mention word pieces mean-pooled, concatenated with the mean of all the sentence's word pieces."""
    vectors = []
    for begin in tqdm(range(0, len(records), batch_size), desc="frozen vectors", leave=False):
        chunk = records[begin : begin + batch_size]
        encoded = tokenizer(
            [record["text"] for record in chunk],
            return_offsets_mapping=True,
            return_special_tokens_mask=True,
            truncation=True,
            max_length=512,
            padding=True,
            return_tensors="pt",
        )
        offsets = encoded.pop("offset_mapping")
        special = encoded.pop("special_tokens_mask").bool()
        hidden = encoder(**encoded).last_hidden_state
        words = encoded["attention_mask"].bool() & ~special
        for row, record in enumerate(chunk):
            inside = words[row] & (offsets[row, :, 0] < record["end"]) & (offsets[row, :, 1] > record["start"])
            if not inside.any():
                raise ValueError(f"Mention {record['id']} has no word piece within the first 512; cannot embed it.")
            mention = hidden[row, inside].mean(0)
            sentence = hidden[row, words[row]].mean(0)
            vectors.append(torch.cat([mention, sentence]))
    return torch.stack(vectors)


def predict_prototype(train_vectors, train_labels, test_vectors) -> list[str]:
    types = sorted(set(train_labels))
    prototypes = torch.stack(
        [train_vectors[[i for i, label in enumerate(train_labels) if label == t]].mean(0) for t in types]
    )
    scores = F.normalize(test_vectors, dim=-1) @ F.normalize(prototypes, dim=-1).T
    return [types[index] for index in scores.argmax(-1).tolist()]


def predict_logreg(train_vectors, train_labels, test_vectors, seed: int) -> list[str]:
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=2000, random_state=seed)
    classifier.fit(train_vectors.numpy(), np.array(train_labels))
    return classifier.predict(test_vectors.numpy()).tolist()


@torch.no_grad()
def mask_vectors(model, tokenizer, records, batch_size: int = 64) -> torch.Tensor:
    """FiveFine's own mention vectors (the MLM transform at the template's typing mask), frozen."""
    encoder = model.get_mention_encoder(tokenizer)
    vectors = []
    for begin in range(0, len(records), batch_size):
        encoded = encoder.encode_batch(
            [(r["text"], r["start"], r["end"]) for r in records[begin : begin + batch_size]]
        )
        padded = tokenizer.pad({"input_ids": [e.input_ids for e in encoded]}, return_tensors="pt")
        positions = torch.tensor([e.mention_position for e in encoded])
        vectors.append(model.embed_mentions(padded["input_ids"], padded["attention_mask"], positions))
    return torch.cat(vectors)


@torch.no_grad()
def mlm_zero_shot_scores(model, tokenizer, records, batch_size: int = 64) -> torch.Tensor:
    """Mean log-probability of each type phrase's word pieces at the typing mask: `(mentions, types)`."""
    encoder = model.get_mention_encoder(tokenizer)
    phrases = model.type_subset_inputs(torch.arange(model.config.num_labels))  # every configured type
    ids, mask = phrases["type_phrase_ids"], phrases["type_phrase_mask"].float()
    scores = []
    for begin in tqdm(range(0, len(records), batch_size), desc="zero-shot", leave=False):
        chunk = records[begin : begin + batch_size]
        encoded = encoder.encode_batch([(r["text"], r["start"], r["end"]) for r in chunk])
        padded = tokenizer.pad({"input_ids": [e.input_ids for e in encoded]}, return_tensors="pt")
        hidden = model.bert(**padded).last_hidden_state
        at_mask = hidden[torch.arange(len(chunk)), [e.mention_position for e in encoded]]
        log_probs = model.cls(at_mask).log_softmax(-1)  # (batch, vocab)
        scores.append((log_probs[:, ids] * mask).sum(-1) / mask.sum(-1))
    return torch.cat(scores)


def score(predicted: list[list[str]], records) -> dict:
    return typing_scores(predicted, [record["labels"] for record in records], hierarchical=True)


def aggregate(runs: list[dict]) -> dict:
    """Mean and standard deviation over runs of each metric, in percent."""
    return {
        label: {
            "mean": round(100 * statistics.mean(run[key] for run in runs), 2),
            "std": round(100 * statistics.stdev(run[key] for run in runs), 2) if len(runs) > 1 else 0.0,
        }
        for key, label in METRICS.items()
    }


EXAMPLE_RULES = {"finest_label": lambda labels: [finest_label(labels)], "every_label": lambda labels: labels}


def label_examples_of(records, rule: str) -> dict[str, list[tuple[str, int, int]]]:
    """`{label: [(text, start, end), ...]}` of training records, each record an example of the labels `rule` keeps."""
    examples: dict[str, list[tuple[str, int, int]]] = {}
    for record in records:
        for label in EXAMPLE_RULES[rule](record["labels"]):
            examples.setdefault(label, []).append((record["text"], record["start"], record["end"]))
    return examples


@torch.no_grad()
def predicted_at_each_weight(model, mention_vectors: torch.Tensor) -> dict[float, list[list[str]]]:
    """Per phrase weight of `WEIGHT_GRID`: the best label plus its ancestors for each mention, from the model's own
    type vectors (label set and examples as configured) at that weight."""
    labels, predictions = model.config.label_list(), {}
    for weight in WEIGHT_GRID:
        model.config.label_example_weight = weight
        best = (mention_vectors @ model.type_embeddings().T).argmax(-1).tolist()
        predictions[weight] = [with_ancestors(labels[index]) for index in best]
    return predictions


def label_example_runs(model, tokenizer, phrases, test, test_vectors, paths, splits, rule: str) -> dict:
    """Test scores per split at each fixed weight and at the weight chosen on the split's dev file."""
    fixed: dict[float, list[dict]] = {weight: [] for weight in FIXED_WEIGHTS}
    chosen, dev_micro_f1 = [], {weight: [] for weight in WEIGHT_GRID}
    for split in tqdm(splits, desc=f"label examples ({rule})", leave=False):
        train = list(load_mentions(str(paths["train"](split)), "ali"))
        dev = list(load_mentions(str(paths["dev"](split)), "ali"))
        model.set_label_set(phrases, tokenizer, examples=label_examples_of(train, rule))
        dev_scores = {
            w: score(p, dev) for w, p in predicted_at_each_weight(model, mask_vectors(model, tokenizer, dev)).items()
        }
        test_scores = {w: score(p, test) for w, p in predicted_at_each_weight(model, test_vectors).items()}
        for weight in WEIGHT_GRID:
            dev_micro_f1[weight].append(dev_scores[weight]["micro_f1"])
        for weight in FIXED_WEIGHTS:
            fixed[weight].append({"split": split, **test_scores[weight]})
        best = max(WEIGHT_GRID, key=lambda weight: (dev_scores[weight]["micro_f1"], weight))
        chosen.append(
            {"split": split, "weight": best, "dev_micro_f1": dev_scores[best]["micro_f1"], **test_scores[best]}
        )
    return {
        "fixed_weight": {str(w): {"aggregate": aggregate(runs), "runs": runs} for w, runs in fixed.items()},
        "dev_chosen_weight": {"aggregate": aggregate(chosen), "runs": chosen},
        # which single weight dev data favours over all splits (what a default for users without dev data rests on)
        "mean_dev_micro_f1_by_weight": {str(w): round(100 * statistics.mean(v), 2) for w, v in dev_micro_f1.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=METHODS, required=True)
    parser.add_argument("--encoder", default=None, help="BERT encoder (zero-shot: one with a fitted MLM head).")
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--seed", type=int, default=7771)
    parser.add_argument(
        "--type_space",
        choices=["mlm", "encoder"],
        default=None,
        help="FiveFine methods from a plain encoder: the paper's MLM type space (default) or the encoder's own, the "
        "default and the only one of `label_examples` (ignored for a FiveFine checkpoint, which keeps its own).",
    )
    parser.add_argument("--eval_on", choices=["test", "dev"], default="test", help="dev: each split's dev file.")
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    if args.type_space is None:
        args.type_space = "encoder" if args.method == "label_examples" else "mlm"
    if args.method == "label_examples" and args.eval_on != "test":
        parser.error("--method label_examples chooses the weight on each split's dev file and reports test.")
    torch.manual_seed(args.seed)

    paths = onto_paths(Path(args.data_dir))
    labels = read_labels(paths["labels"])
    test = list(load_mentions(str(paths["test"]), "ali"))
    encoder_path = args.encoder or default_encoder()
    started = time.perf_counter()
    if args.method in ("prototype", "logreg"):
        tokenizer = AutoTokenizer.from_pretrained(encoder_path)
        encoder = AutoModel.from_pretrained(encoder_path).eval()

        def embed(records):
            return frozen_vectors(encoder, tokenizer, records)

    else:
        phrases = label_phrases_for(labels, "ontonotes")
        # a FiveFine checkpoint (e.g. the UFET model) takes these labels; a plain encoder starts in --type_space
        model, tokenizer = BertForPhraseTypeTyping.for_labels(
            encoder_path, phrases, new_model_overrides={"nwp_loss_weight": 0.0, "type_space": args.type_space}
        )
        model.eval()

        def embed(records):
            return mask_vectors(model, tokenizer, records)

    def zero_shot(records) -> list[list[str]]:
        if args.method == "zero_shot_mlm":
            best = mlm_zero_shot_scores(model, tokenizer, records).argmax(-1).tolist()
            return [with_ancestors(labels[index]) for index in best]
        typer = pipeline("entity-typing", model=model, tokenizer=tokenizer)
        outputs = typer(
            [{"text": r["text"], "span": (r["start"], r["end"])} for r in records],
            batch_size=64,
            candidate_labels=phrases,
            decision="argmax_with_ancestors",
        )
        return [[item["label"] for item in output["labels"]] for output in outputs]

    common = {"method": args.method, "encoder": str(encoder_path)}
    if args.method == "label_examples":
        test_vectors = mask_vectors(model, tokenizer, test)
        rules = {
            rule: label_example_runs(model, tokenizer, phrases, test, test_vectors, paths, args.splits, rule)
            for rule in EXAMPLE_RULES
        }
        for rule, result in rules.items():
            fixed = result["fixed_weight"]
            print(f"{rule}: " + " | ".join(f"a={w} {fixed[str(w)]['aggregate']['Mi-F1']}" for w in FIXED_WEIGHTS))
            print(
                f"{rule}: dev-chosen a {[run['weight'] for run in result['dev_chosen_weight']['runs']]}: "
                f"{result['dev_chosen_weight']['aggregate']['Mi-F1']}"
            )
        extra = {"type_space": model.config.type_space, "weight_grid": list(WEIGHT_GRID), "splits": args.splits}
        report(
            {
                **common,
                **extra,
                "example_rules": rules,
                "seconds": round(time.perf_counter() - started, 1),
                "machine": machine(),
            },
            args.output,
        )
        return

    runs, cached = [], {}
    for split in args.splits:
        evaluated = test if args.eval_on == "test" else list(load_mentions(str(paths["dev"](split)), "ali"))
        if args.method.startswith("zero_shot"):  # no training data: on test, one run stands for every split
            if args.eval_on == "test" and runs:
                break
            runs.append(
                {"split": split if args.eval_on == "dev" else "none", **score(zero_shot(evaluated), evaluated)}
            )
            continue
        if args.eval_on == "test":
            cached.setdefault("test", embed(test))
        evaluated_vectors = cached["test"] if args.eval_on == "test" else embed(evaluated)
        train = list(load_mentions(str(paths["train"](split)), "ali"))
        train_labels = [finest_label(record["labels"]) for record in train]
        train_vectors = embed(train)
        if args.method == "logreg":
            finest = predict_logreg(train_vectors, train_labels, evaluated_vectors, args.seed)
        else:
            finest = predict_prototype(train_vectors, train_labels, evaluated_vectors)
        runs.append({"split": split, **score([with_ancestors(label) for label in finest], evaluated)})

    totals = aggregate(runs)
    for run in runs:
        print(f"split {run['split']}: " + ", ".join(f"{name} {100 * run[key]:.2f}" for key, name in METRICS.items()))
    print(" | ".join(f"{name} {value['mean']:.2f} ± {value['std']:.2f}" for name, value in totals.items()))
    report(
        {
            **common,
            "type_space": model.config.type_space if args.method not in ("prototype", "logreg") else None,
            "eval_on": args.eval_on,
            "aggregate": totals,
            "runs": runs,
            "seconds": round(time.perf_counter() - started, 1),
            "machine": machine(),
        },
        args.output,
    )


if __name__ == "__main__":
    main()
