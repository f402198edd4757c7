"""How deep in the type hierarchy a FET model's predictions go, against the gold labels of the test set.

A model that picks coarse types (`/location`) where the gold is fine (`/location/city`) loses strict accuracy while
keeping partial credit; this shows whether that is what happens.

    python benchmarks/prediction_depth.py --model_dir outputs/bench/onto5-fivefine-minilm-split0
"""

import argparse
from collections import Counter
from pathlib import Path

from common import DEFAULT_DATA_DIR
from transformers import pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline)
from modeling_entity_typing import load_mentions


def depth(labels: list[str]) -> int:
    return max(label.count("/") for label in labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument(
        "--test_file", default=str(Path(DEFAULT_DATA_DIR) / "fivefine/alifet/ontonotes/onto_test_ali.json")
    )
    args = parser.parse_args()
    test = load_mentions(args.test_file)
    typer = pipeline("entity-typing", model=args.model_dir)
    outputs = typer(
        [{"text": r["text"], "span": (r["start"], r["end"])} for r in test],
        batch_size=64,
        decision="argmax_with_ancestors",
    )
    predicted = Counter(depth([item["label"] for item in output["labels"]]) for output in outputs)
    gold = Counter(depth(labels) for labels in test["labels"])
    top = Counter(max((item["label"] for item in output["labels"]), key=len) for output in outputs)
    print(f"{len(test)} test mentions; share of mentions by the depth of their finest label")
    print("depth   gold   predicted")
    for level in sorted(set(gold) | set(predicted)):
        print(f"{level:>5} {100 * gold[level] / len(test):6.1f} {100 * predicted[level] / len(test):11.1f}")
    print("most predicted finest labels:", ", ".join(f"{label} {count}" for label, count in top.most_common(5)))


if __name__ == "__main__":
    main()
