"""Entity-typing metrics as pure functions: strict accuracy, loose macro and loose micro P/R/F1.

Definitions follow the code that produced FiveFine's numbers (reference `utils/utils.py`; Ling & Weld 2012):

* strict accuracy: share of mentions whose predicted set equals the gold set;
* loose macro: P = mean over mentions *with a prediction* of |pred ∩ gold| / |pred|, R = mean over mentions *with
  gold labels* of |pred ∩ gold| / |gold|, F1 = 2PR / (P + R) (P and R are averaged separately, so this is not
  scikit-learn's `average="samples"`);
* loose micro: P = Σ|pred ∩ gold| / Σ|pred|, R = Σ|pred ∩ gold| / Σ|gold| (scikit-learn's micro average).

With `hierarchical=True` both sides are first closed under `/`-path ancestors, as for FET benchmarks.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..decision import decide, label_ancestors


def with_ancestors(labels: Sequence[str]) -> set[str]:
    """The labels plus all their `/`-path ancestors."""
    return {ancestor for label in labels for ancestor in (label, *label_ancestors(label))}


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def loose_macro(predictions: Sequence[set[str]], references: Sequence[set[str]]) -> tuple[float, float, float]:
    """Loose macro (P, R, F1) over mentions, as defined in the module docstring."""
    precisions = [len(pred & gold) / len(pred) for pred, gold in zip(predictions, references) if pred]
    recalls = [len(pred & gold) / len(gold) for pred, gold in zip(predictions, references) if gold]
    precision = float(np.mean(precisions)) if precisions else 0.0
    recall = float(np.mean(recalls)) if recalls else 0.0
    return precision, recall, _f1(precision, recall)


def typing_scores(
    predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]], hierarchical: bool = False
) -> dict[str, float]:
    """All metrics for parallel lists of predicted and gold label lists; values in [0, 1]."""
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} predictions for {len(references)} references; they must pair up.")
    if not references:
        raise ValueError("No mentions to score.")
    # Imported here: scikit-learn takes a second to import, and `import modeling_entity_typing` should not pay it.
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    expand = with_ancestors if hierarchical else set
    predicted = [expand(labels) for labels in predictions]
    gold = [expand(labels) for labels in references]
    binarizer = MultiLabelBinarizer(sparse_output=True).fit(predicted + gold)
    predicted_matrix, gold_matrix = binarizer.transform(predicted), binarizer.transform(gold)
    micro_p, micro_r, micro_f1, _ = precision_recall_fscore_support(
        gold_matrix, predicted_matrix, average="micro", zero_division=0
    )
    macro_p, macro_r, macro_f1 = loose_macro(predicted, gold)
    return {
        "strict_accuracy": float(accuracy_score(gold_matrix, predicted_matrix)),
        "macro_precision": macro_p,
        "macro_recall": macro_r,
        "macro_f1": macro_f1,
        "micro_precision": float(micro_p),
        "micro_recall": float(micro_r),
        "micro_f1": float(micro_f1),
        "num_mentions": len(gold),
    }


def gold_matrix(references: Sequence[Sequence[str]], labels: Sequence[str]) -> torch.Tensor:
    """`(mentions, labels)` booleans: True where the label (column order of `labels`) is one of the mention's gold
    labels; gold labels outside `labels` have no column and are left out."""
    index = {label: position for position, label in enumerate(labels)}
    gold = torch.zeros((len(references), len(labels)), dtype=torch.bool)
    for row, reference in enumerate(references):
        gold[row, [index[label] for label in set(reference) if label in index]] = True
    return gold


THRESHOLD_GRID = tuple(round(0.05 * step, 2) for step in range(1, 20))  # 0.05, 0.10, ..., 0.95


class _ThresholdRuleScores:
    """Loose macro-F1 of the `"threshold"` rule at any threshold (one, or one per label) on `(mentions, labels)`
    probabilities, computed on boolean matrices (the rule's sets: labels at or above their threshold, else the best
    one), which is the definition of `loose_macro` without building a Python set per mention and threshold."""

    def __init__(self, probabilities, references: Sequence[Sequence[str]], labels: Sequence[str]):
        self.probabilities = torch.as_tensor(probabilities, dtype=torch.float32)
        self.gold = gold_matrix(references, labels)
        self.gold_sizes = torch.tensor([len(set(reference)) for reference in references], dtype=torch.float32)
        self.best_rows = self.probabilities.argmax(dim=-1)
        self.has_gold = self.gold_sizes > 0

    def macro_f1(self, thresholds: float | torch.Tensor) -> float:
        predicted = self.probabilities >= thresholds
        empty = ~predicted.any(dim=-1)
        predicted[empty, self.best_rows[empty]] = True
        hits = (predicted & self.gold).sum(dim=-1).float()
        precision = (hits / predicted.sum(dim=-1)).mean().item()
        has_gold = self.has_gold
        recall = (hits[has_gold] / self.gold_sizes[has_gold]).mean().item() if has_gold.any() else 0.0
        return _f1(precision, recall)


def tune_threshold(
    probabilities, references: Sequence[Sequence[str]], labels: Sequence[str], grid: Sequence[float] = THRESHOLD_GRID
) -> tuple[float, dict[str, float]]:
    """The threshold of the `"threshold"` rule with the best loose macro-F1 (ties: the higher threshold) on
    `(mentions, labels)` probabilities, and all scores there. Choose it on dev data, then keep it in the config.

    The grid is scanned on boolean matrices (`_ThresholdRuleScores`); the chosen threshold is then scored once by
    `typing_scores` through `decide`.
    """
    rule = _ThresholdRuleScores(probabilities, references, labels)
    threshold = max(grid, key=lambda value: (rule.macro_f1(value), value))
    predicted = [[item["label"] for item in decide(row, labels, "threshold", threshold)] for row in rule.probabilities]
    return threshold, typing_scores(predicted, references)


# Finer steps near 1, where UFET's ultra-fine types end up: there are thousands of them per mention to reject.
GROUP_THRESHOLD_GRID = (*THRESHOLD_GRID, 0.96, 0.97, 0.98, 0.99)


def check_threshold_groups(group_sizes: Sequence[int], num_labels: int) -> None:
    """Threshold groups are positive sizes of leading groups of labels that leave labels for the last group."""
    if any(size < 1 for size in group_sizes) or sum(group_sizes) >= num_labels:
        raise ValueError(
            f"Threshold groups {' '.join(map(str, group_sizes))} must be positive sizes that leave labels for the "
            f"last group ({num_labels} labels)."
        )


def tune_group_thresholds(
    probabilities,
    references: Sequence[Sequence[str]],
    labels: Sequence[str],
    group_sizes: Sequence[int],
    start: float,
    grid: Sequence[float] = GROUP_THRESHOLD_GRID,
    rounds: int = 3,
) -> tuple[list[float], dict[str, float]]:
    """A threshold per group of labels with the best loose macro-F1, and all scores there: the groups are the first
    `group_sizes[0]` labels, the next `group_sizes[1]`, ..., and the rest (UFET: 9 general types, 121 fine, then the
    ultra-fine ones). Coordinate ascent from `start` for every group: each round sets each group's threshold to its
    best on the grid with the others fixed (ties: keep the current one). Choose them on dev data."""
    check_threshold_groups(group_sizes, len(labels))
    rule = _ThresholdRuleScores(probabilities, references, labels)
    group_of = torch.repeat_interleave(
        torch.arange(len(group_sizes) + 1), torch.tensor([*group_sizes, len(labels) - sum(group_sizes)])
    )
    thresholds = [float(start)] * (len(group_sizes) + 1)
    best = rule.macro_f1(torch.tensor(thresholds)[group_of])
    for _ in range(rounds):
        changed = False
        for group in range(len(thresholds)):
            for value in grid:
                trial = [*thresholds[:group], value, *thresholds[group + 1 :]]
                score = rule.macro_f1(torch.tensor(trial)[group_of])
                if score > best:
                    best, thresholds, changed = score, trial, True
        if not changed:
            break
    per_label = torch.tensor(thresholds)[group_of]
    predicted = [[item["label"] for item in decide(row, labels, "threshold", per_label)] for row in rule.probabilities]
    return thresholds, typing_scores(predicted, references)


METRIC_PATH = Path(__file__).parent / "metrics" / "entity_typing"


def load_typing_metric(**kwargs):
    """The `evaluate` module of these metrics, loaded from the installed package (no Hub access)."""
    import evaluate

    return evaluate.load(str(METRIC_PATH), **kwargs)


__all__ = [
    "METRIC_PATH",
    "GROUP_THRESHOLD_GRID",
    "THRESHOLD_GRID",
    "check_threshold_groups",
    "gold_matrix",
    "load_typing_metric",
    "loose_macro",
    "tune_group_thresholds",
    "tune_threshold",
    "typing_scores",
    "with_ancestors",
]
