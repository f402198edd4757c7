"""Decision rules: from type probabilities to predicted labels (FiveFine's `tasks/fettask.py` and UFET evaluation)."""

from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Literal, get_args

import torch


# The one list of decision rules: the configs' `decision` field, `decide`, the pipeline and the ONNX typer use it.
DecisionRule = Literal["threshold", "argmax_with_ancestors"]
DECISION_RULES: tuple[str, ...] = get_args(DecisionRule)


def label_ancestors(label: str) -> list[str]:
    """Hierarchical ancestors by `/` prefixes: `/person/artist/music` -> [`/person`, `/person/artist`]."""
    parts = label.split("/")
    return ["/".join(parts[:depth]) for depth in range(2, len(parts)) if parts[depth - 1]]


def own_thresholds(
    threshold: float, label_thresholds: Mapping[str, float] | None, labels: Sequence[str]
) -> float | torch.Tensor:
    """The threshold of each of `labels` (a model's own label set): `threshold`, or a `(num_labels,)` tensor where
    `label_thresholds` gives some labels their own."""
    if not label_thresholds:
        return threshold
    return torch.tensor([label_thresholds.get(label, threshold) for label in labels], dtype=torch.float32)


def decide(
    probabilities: torch.Tensor,
    labels: Sequence[str],
    decision: str = "threshold",
    threshold: float | torch.Tensor | None = 0.5,
    top_k: int | None = None,
) -> list[dict]:
    """Labels for one mention as `[{"label", "score"}]`, highest score first.

    * `"threshold"`: every label with probability >= `threshold` (one number, or one per label: `own_thresholds`);
      if none passes, the single best label (the UFET
      evaluation rule, so every mention gets at least one type). With `threshold=None` every label is a candidate,
      so `top_k` alone gives the `top_k` best labels.
    * `"argmax_with_ancestors"`: the best label plus its `/`-path ancestors (FiveFine's FET rule). An ancestor that is
      itself a label keeps its own score; one that is not gets the score of the chosen label.

    `top_k` caps how many labels come back, after the rule.
    """
    probabilities = probabilities.float()
    if top_k is not None and top_k < 1:
        raise ValueError(f"`top_k` must be a positive integer or None (no cap), got {top_k!r}.")
    if decision == "threshold":
        if threshold is None:
            if top_k is None:
                raise ValueError("The threshold rule needs a `threshold`, or `top_k` to keep the k best labels.")
            chosen = torch.arange(probabilities.numel(), device=probabilities.device)
        else:
            chosen = (probabilities >= threshold).nonzero().flatten()
        if chosen.numel() == 0:
            chosen = probabilities.argmax().reshape(1)
        scores = probabilities[chosen]
        if top_k is not None and top_k < scores.numel():
            order = scores.topk(top_k).indices  # far cheaper than a full sort of thousands of passing labels
        else:
            order = scores.argsort(descending=True, stable=True)  # stable: ties keep label order
        # One conversion to Python per mention, not one per label: up to every label of a 10k set can pass.
        return [
            {"label": labels[index], "score": score}
            for index, score in zip(chosen[order].tolist(), scores[order].tolist())
        ]
    elif decision == "argmax_with_ancestors":
        best = int(probabilities.argmax())
        best_score = float(probabilities[best])
        result = [{"label": labels[best], "score": best_score}]
        for ancestor in label_ancestors(labels[best]):
            score = best_score
            if ancestor in labels:  # a scan per ancestor (at most a few) beats indexing all labels per call
                score = float(probabilities[labels.index(ancestor)])
            result.append({"label": ancestor, "score": score})
        result.sort(key=lambda item: -item["score"])
        return result[:top_k]
    raise ValueError(f"`decision` must be {' or '.join(map(repr, DECISION_RULES))}, got {decision!r}.")


def resolve_rule(
    decision: str | None,
    threshold: float | None,
    top_k: int | None,
    default_decision: str,
    default_threshold: float | torch.Tensor,
) -> tuple[str, float | torch.Tensor | None]:
    """The `(decision, threshold)` for `decide` that the caller's options ask for, following transformers' `top_k`.

    * nothing given: the default rule (the model config's `decision`, at its `threshold`);
    * `top_k` alone: the `top_k` best labels, whatever their scores (threshold `None`);
    * `threshold` (with or without `top_k`): the threshold rule at that threshold, then at most `top_k` labels;
    * `decision` names the rule outright; `"threshold"` without a threshold uses the default one, and
      `"argmax_with_ancestors"` takes no threshold (it keeps the best label and its ancestors, then `top_k` caps).
    """
    if decision is None:
        if threshold is not None or top_k is not None:
            return "threshold", threshold  # threshold None: `top_k` alone keeps the k best
        decision = default_decision
    elif decision == "argmax_with_ancestors" and threshold is not None:
        raise ValueError(
            f"`threshold` ({threshold!r}) applies to decision='threshold' only; 'argmax_with_ancestors' keeps the "
            "best label and its ancestors. Drop `threshold`, or pass decision='threshold'."
        )
    if decision == "threshold" and threshold is None:
        threshold = default_threshold
    return decision, threshold


def check_rule_options(threshold: object, top_k: object, decision: object) -> None:
    """Raise a `ValueError` naming the first bad decision option; every caller of `resolve_rule` checks with this."""
    if threshold is not None and (
        not isinstance(threshold, Real) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(f"`threshold` is a probability in [0, 1], got {threshold!r}.")
    if top_k is not None and (not isinstance(top_k, Integral) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"`top_k` must be a positive integer or None (no cap), got {top_k!r}.")
    if decision is not None and decision not in DECISION_RULES:
        raise ValueError(f"`decision` must be one of {DECISION_RULES}, got {decision!r}.")
    if decision == "argmax_with_ancestors" and threshold is not None:
        resolve_rule(decision, threshold, top_k, decision, threshold)  # raises its explanation


__all__ = [
    "DECISION_RULES",
    "DecisionRule",
    "check_rule_options",
    "decide",
    "label_ancestors",
    "own_thresholds",
    "resolve_rule",
]
