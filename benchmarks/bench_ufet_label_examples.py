"""UFET crowd with its training mentions as label examples at call time: no training, the mixing weight and the type
group thresholds chosen on dev, test macro-F1 beside the model's own (the weight `a = 1`, its phrases alone).

Each UFET type with training mentions gets the type vector `normalize(a * phrase + (1 - a) * mean of its examples'
unit mention vectors)` (`fivefine.example_mixing`, what `set_label_set(..., examples=)` stores); types without
training mentions keep their phrase. Every mention and type vector is read by the model itself. For each `a` of
the grid, the thresholds of UFET's type groups (9 general, 121 fine, the ultra-fine rest) are tuned on dev exactly as
`pretrain_ufet.py --threshold_groups 9 121` tuned the model's own (on the uncalibrated scores, from the selected
step's threshold), so `a = 1` reproduces the model's own thresholds and scores; the weight with the best dev
macro-F1 is the one reported on test.

    python benchmarks/bench_ufet_label_examples.py --model outputs/fivefine-minilm-ufet \\
        --output benchmarks/results/ufet_label_examples.json
"""

import argparse
import time
from pathlib import Path

import torch
from common import DEFAULT_DATA_DIR, machine, report, ufet_records
from transformers import AutoModel, AutoTokenizer

import modeling_entity_typing  # noqa: F401  (registers the model)
from modeling_entity_typing.calibration import PlattScaling
from modeling_entity_typing.decision import decide
from modeling_entity_typing.evaluation.scoring import tune_group_thresholds, typing_scores
from modeling_entity_typing.fivefine.example_mixing import ExampleVectors, mix_examples
from modeling_entity_typing.fivefine.sentence_space import CosineTypeScorer
from modeling_entity_typing.output_paths import refuse_to_replace


WEIGHTS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
GROUP_SIZES = [9, 121]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="A FiveFine model in the encoder type space.")
    parser.add_argument("--data_dir", type=Path, default=DEFAULT_DATA_DIR, help="Holds ufet/{train,dev,test}.json.")
    parser.add_argument("--weights", type=float, nargs="+", default=list(WEIGHTS), help="Phrase weights `a` tried.")
    parser.add_argument("--output", type=Path, help="Where to write the JSON results (refused if it exists).")
    parser.add_argument("--overwrite", action="store_true", help="Replace an existing --output.")
    return parser.parse_args()


@torch.no_grad()
def mention_vectors(model, tokenizer, records, batch_size: int = 64) -> torch.Tensor:
    """The model's mention vectors (`embed_mentions`: scale and bias attached) of every record."""
    encoder = model.get_mention_encoder(tokenizer)
    mentions = list(zip(records["text"], records["start"], records["end"]))
    vectors = []
    for begin in range(0, len(mentions), batch_size):
        encoded = encoder.encode_batch(mentions[begin : begin + batch_size])
        padded = tokenizer.pad({"input_ids": [e.input_ids for e in encoded]}, return_tensors="pt")
        positions = torch.tensor([e.mention_position for e in encoded])
        vectors.append(model.embed_mentions(padded["input_ids"], padded["attention_mask"], positions))
    return torch.cat(vectors)


def example_vectors(train_vectors: torch.Tensor, train_labels: list[list[str]], labels: list[str]) -> ExampleVectors:
    """Per type with training mentions, its row and the mean unit direction of those mentions."""
    row_of = {label: row for row, label in enumerate(labels)}
    directions = CosineTypeScorer.direction(train_vectors)
    members: dict[int, list[int]] = {}
    for index, gold in enumerate(train_labels):
        for label in gold:
            if label in row_of:
                members.setdefault(row_of[label], []).append(index)
    rows = sorted(members)
    means = torch.stack([directions[members[row]].mean(dim=0) for row in rows])
    return ExampleVectors(torch.tensor(rows), means)


def predictions(probabilities: torch.Tensor, labels: list[str], thresholds: list[float]) -> list[list[str]]:
    group_of = torch.repeat_interleave(
        torch.arange(len(thresholds)), torch.tensor([*GROUP_SIZES, len(labels) - sum(GROUP_SIZES)])
    )
    per_label = torch.tensor(thresholds)[group_of]
    return [[item["label"] for item in decide(row, labels, "threshold", per_label)] for row in probabilities]


def main() -> None:
    args = parse_args()
    if args.output is not None:
        refuse_to_replace([args.output], args.overwrite, "--overwrite")
    started = time.perf_counter()
    model = AutoModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if not model.supports_label_examples:
        raise SystemExit(f"{args.model} takes no label examples (FiveFine in the encoder type space does).")
    labels = model.config.label_list()
    splits = {name: ufet_records(args.data_dir / "ufet" / f"{name}.json") for name in ("train", "dev", "test")}
    vectors = {name: mention_vectors(model, tokenizer, records) for name, records in splits.items()}
    examples = example_vectors(vectors["train"], splits["train"]["labels"], labels)
    with torch.no_grad():
        phrases = model.type_embeddings()
    # the thresholds were tuned before calibration: undo it, and start from the selected step's threshold
    calibration = PlattScaling.of(model.config)
    start = PlattScaling(1 / calibration.slope, -calibration.offset / calibration.slope).probability(
        model.config.threshold
    )
    rows = []
    for weight in args.weights:
        types = mix_examples(phrases, examples, weight)
        probabilities = {name: (vectors[name] @ types.T).sigmoid() for name in ("dev", "test")}
        thresholds, dev = tune_group_thresholds(
            probabilities["dev"], splits["dev"]["labels"], labels, GROUP_SIZES, start=start
        )
        test = typing_scores(predictions(probabilities["test"], labels, thresholds), splits["test"]["labels"])
        calibrated = [calibration.probability(threshold) for threshold in thresholds]
        rows.append({"phrase_weight": weight, "group_thresholds": calibrated, "dev": dev, "test": test})
        print(f"a={weight}: dev macro-F1 {dev['macro_f1']:.4f}, test macro-F1 {test['macro_f1']:.4f}", flush=True)
    chosen = max(rows, key=lambda row: (row["dev"]["macro_f1"], row["phrase_weight"]))  # ties: more phrase
    results = {
        "benchmark": "ufet_label_examples",
        "model": str(args.model),
        "types_with_examples": len(examples.rows),
        "num_types": len(labels),
        "rows": rows,
        "chosen_on_dev": chosen["phrase_weight"],
        "test_macro_f1_chosen": chosen["test"]["macro_f1"],
        "test_macro_f1_phrases_alone": next(r["test"]["macro_f1"] for r in rows if r["phrase_weight"] == 1.0)
        if 1.0 in args.weights
        else None,
        "seconds": time.perf_counter() - started,
        "machine": machine(),
    }
    report(results, args.output)


if __name__ == "__main__":
    main()
