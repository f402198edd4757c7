"""Decision rules: from type probabilities to predicted labels (FIVEFINE.md §3.4 and §5.1)."""

from collections.abc import Sequence

import torch


def label_ancestors(label: str) -> list[str]:
    """Hierarchical ancestors by `/` prefixes: `/person/artist/music` -> [`/person`, `/person/artist`]."""
    parts = label.split("/")
    return ["/".join(parts[:depth]) for depth in range(2, len(parts)) if parts[depth - 1]]


def decide(
    probabilities: torch.Tensor,
    labels: Sequence[str],
    decision: str = "threshold",
    threshold: float = 0.5,
    top_k: int | None = None,
) -> list[dict]:
    """Labels for one mention as `[{"label", "score"}]`, highest score first.

    * `"threshold"`: every label with probability >= `threshold`; if none passes, the single best label (the UFET
      evaluation rule, so every mention gets at least one type).
    * `"argmax_with_ancestors"`: the best label plus its `/`-path ancestors (FiveFine's FET rule). An ancestor that is
      itself a label keeps its own score; one that is not gets the score of the chosen label.

    `top_k` caps how many labels come back, after the rule.
    """
    probabilities = probabilities.float()
    if decision == "threshold":
        chosen = (probabilities >= threshold).nonzero().flatten()
        if chosen.numel() == 0:
            chosen = probabilities.argmax().reshape(1)
        order = probabilities[chosen].argsort(descending=True, stable=True)
        result = [{"label": labels[i], "score": float(probabilities[i])} for i in chosen[order].tolist()]
    elif decision == "argmax_with_ancestors":
        best = int(probabilities.argmax())
        best_score = float(probabilities[best])
        index_of = {label: index for index, label in enumerate(labels)}
        result = [{"label": labels[best], "score": best_score}]
        for ancestor in label_ancestors(labels[best]):
            index = index_of.get(ancestor)
            result.append({"label": ancestor, "score": best_score if index is None else float(probabilities[index])})
        result.sort(key=lambda item: -item["score"])
    else:
        raise ValueError(f"`decision` must be 'threshold' or 'argmax_with_ancestors', got {decision!r}.")
    return result if top_k is None else result[:top_k]


__all__ = ["decide", "label_ancestors"]
