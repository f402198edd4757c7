"""Reference point for UFET scores: predict the k most frequent training labels for every test mention.

A model that has learned only label frequencies scores about this; one that reads the context must beat it.

    python benchmarks/ufet_prior_baseline.py
"""

import argparse
from collections import Counter
from pathlib import Path

from common import DEFAULT_DATA_DIR

from modeling_entity_typing import load_mentions, typing_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(DEFAULT_DATA_DIR))
    parser.add_argument("--max_k", type=int, default=3)
    args = parser.parse_args()
    train = load_mentions(Path(args.data_dir) / "ufet" / "train.json")
    test = load_mentions(Path(args.data_dir) / "ufet" / "test.json")
    frequency = Counter(label for labels in train["labels"] for label in labels)
    print("k  labels                                   macro P    macro R   macro F1")
    for k in range(1, args.max_k + 1):
        prior = [label for label, _ in frequency.most_common(k)]
        scores = typing_scores([prior] * len(test), test["labels"])
        precision, recall, f1 = (100 * scores[f"macro_{name}"] for name in ("precision", "recall", "f1"))
        print(f"{k}  {', '.join(prior):<38} {precision:9.2f} {recall:10.2f} {f1:10.2f}")


if __name__ == "__main__":
    main()
