"""Cross-C's contrastive objectives as pure functions of mention vectors (Han et al., ACL 2022, Eq. 5–7).

For an anchor i with positives P(i) and a candidate pool D(i) (every candidate but i itself):

    L_i = −( log Σ_{j∈P(i)} exp(cos(m_i, m_j)/τ)  −  log Σ_{k∈D(i)} exp(cos(m_i, m_k)/τ) )

`denominator="pos+neg"` is the paper's form; `"neg"` sums over negatives only, as the reference code does. The
objective adds a mono-lingual term per language (anchors and candidates in one language) and a cross-lingual term
(translated anchors against the source-language pool), each weighted, so the ablations (-ec, -zc, -cc) are zero
weights. Under DDP the candidates come from every process through a differentiable all-gather.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from transformers.utils import ModelOutput


DENOMINATORS = ("pos+neg", "neg")


def multi_positive_contrastive_loss(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    positive_mask: torch.Tensor,
    candidate_mask: torch.Tensor,
    temperature: float = 0.5,
    denominator: str = "pos+neg",
) -> tuple[torch.Tensor, int]:
    """Mean multi-positive loss over the anchors that have a positive, and how many did.

    `anchors (A, d)`, `candidates (C, d)`; `positive_mask (A, C)` marks positives, `candidate_mask (A, C)` the
    candidates that count at all (False for the anchor itself and for padding). Positives outside `candidate_mask`
    are ignored. Anchors with no positive (or, for `"neg"`, no negative) contribute nothing; with none left the loss
    is a differentiable 0.
    """
    if denominator not in DENOMINATORS:
        raise ValueError(f"`denominator` must be one of {DENOMINATORS}, got {denominator!r}.")
    if not temperature > 0:
        raise ValueError(f"`temperature` must be > 0, got {temperature!r}.")
    similarity = F.normalize(anchors.float(), dim=-1) @ F.normalize(candidates.float(), dim=-1).T / temperature
    positives = positive_mask & candidate_mask
    pool = candidate_mask if denominator == "pos+neg" else candidate_mask & ~positive_mask
    valid = positives.any(dim=1) & pool.any(dim=1)
    if not valid.any():
        return similarity.sum() * 0.0, 0
    very_negative = torch.finfo(similarity.dtype).min
    log_positive = similarity.masked_fill(~positives, very_negative).logsumexp(dim=1)
    log_pool = similarity.masked_fill(~pool, very_negative).logsumexp(dim=1)
    return (log_pool - log_positive)[valid].mean(), int(valid.sum())


def gather_with_grad(tensor: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All processes' rows, concatenated, with gradients flowing back to their owners; and this process' offset.

    Rows per process may differ: each pads to the largest count before the all-gather and the padding is cut off.
    Without an initialised process group this is the identity.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor, 0
    from torch.distributed.nn.functional import all_gather

    count = torch.tensor([tensor.size(0)], device=tensor.device)
    counts = [torch.zeros_like(count) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    padded = F.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, max(counts) - tensor.size(0)))
    pieces = all_gather(padded)
    rank = dist.get_rank()
    return torch.cat([piece[:n] for piece, n in zip(pieces, counts)]), sum(counts[:rank])


def gather_no_grad(tensor: torch.Tensor) -> torch.Tensor:
    """`gather_with_grad` for labels and ids (no gradient)."""
    with torch.no_grad():
        return gather_with_grad(tensor)[0]


@dataclass
class ContrastiveWeights:
    """Weights of the three terms: source-language mono-lingual (ec), target-language mono-lingual (zc) and
    cross-lingual (cc); a zero weight is the ablation that removes the term."""

    source_mono: float = 1.0
    target_mono: float = 1.0
    cross: float = 1.0


@dataclass
class ContrastiveOutput(ModelOutput):
    """`loss` (weighted sum) and each term (unweighted; None when no anchor in the batch had a positive)."""

    loss: torch.Tensor | None = None
    source_mono_loss: torch.Tensor | None = None
    target_mono_loss: torch.Tensor | None = None
    cross_loss: torch.Tensor | None = None


def crossc_objective(
    embeddings: torch.Tensor,
    group_ids: torch.Tensor,
    lang_ids: torch.Tensor,
    example_ids: torch.Tensor | None = None,
    source_lang_id: int = 0,
    weights: ContrastiveWeights | None = None,
    temperature: float = 0.5,
    denominator: str = "pos+neg",
) -> ContrastiveOutput:
    """The weighted Cross-C objective for one (local) batch; candidates are gathered from all processes.

    `group_ids (B,)`: examples sharing a group are positives (entity-pair rule groups; a translation keeps its
    source's group). `lang_ids (B,)`: language of each example; `source_lang_id` is the language translated from.
    `example_ids (B,)`: a global id per example so that the same example drawn twice is not its own positive (the
    anchor itself is always excluded). Mono-lingual terms: anchors and candidates of one language; the target term is
    the mean over the non-source languages present. Cross-lingual term: non-source anchors against the source pool.
    """
    weights = weights or ContrastiveWeights()
    all_embeddings, offset = gather_with_grad(embeddings)
    all_groups, all_langs = gather_no_grad(group_ids), gather_no_grad(lang_ids)
    local = torch.arange(embeddings.size(0), device=embeddings.device)
    if example_ids is None:
        example_ids = local + offset
    all_examples = gather_no_grad(example_ids)
    same_group = group_ids[:, None] == all_groups[None, :]
    not_self = example_ids[:, None] != all_examples[None, :]  # the anchor itself included

    def term(anchor_rows: torch.Tensor, candidate_langs: torch.Tensor) -> torch.Tensor | None:
        if not anchor_rows.any():
            return None
        candidates = not_self[anchor_rows] & candidate_langs[None, :]
        loss, count = multi_positive_contrastive_loss(
            embeddings[anchor_rows], all_embeddings, same_group[anchor_rows], candidates, temperature, denominator
        )
        return loss if count else None

    source_rows = lang_ids == source_lang_id
    source_mono = term(source_rows, all_langs == source_lang_id)
    target_terms = []
    for lang in all_langs.unique().tolist():
        loss = term(lang_ids == lang, all_langs == lang) if lang != source_lang_id else None
        if loss is not None:
            target_terms.append(loss)
    target_mono = torch.stack(target_terms).mean() if target_terms else None
    cross = term(~source_rows, all_langs == source_lang_id)
    weighted = [(source_mono, weights.source_mono), (target_mono, weights.target_mono), (cross, weights.cross)]
    present = [loss * weight for loss, weight in weighted if loss is not None and weight > 0]
    total = torch.stack(present).sum() if present else embeddings.sum() * 0.0
    return ContrastiveOutput(loss=total, source_mono_loss=source_mono, target_mono_loss=target_mono, cross_loss=cross)


class ContrastivePretrainer(nn.Module):
    """Wraps a typing model so that one `forward` is one contrastive step: mention vectors, then `crossc_objective`.

    Wrapping (rather than computing the loss in the script) lets DDP, accumulation and `train_with_selection` treat
    the objective like any model loss; the model itself is saved with `pretrainer.model.save_pretrained`.
    """

    def __init__(
        self,
        model: nn.Module,
        weights: ContrastiveWeights | None = None,
        source_lang_id: int = 0,
    ):
        super().__init__()
        self.model = model
        self.weights = weights or ContrastiveWeights()
        self.source_lang_id = source_lang_id

    def forward(
        self,
        input_ids: torch.Tensor,
        group_ids: torch.Tensor,
        lang_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        example_ids: torch.Tensor | None = None,
        **unused,
    ) -> ContrastiveOutput:
        config = self.model.config
        embeddings = self.model.embed_mentions(input_ids, attention_mask, mention_positions)
        return crossc_objective(
            embeddings,
            group_ids,
            lang_ids,
            example_ids,
            self.source_lang_id,
            self.weights,
            config.contrastive_temperature,
            config.contrastive_denominator,
        )


def lang_vocabulary(langs: Sequence[str], source_lang: str) -> dict[str, int]:
    """Language codes -> ids with the source language as 0 (the objective's default `source_lang_id`)."""
    others = sorted(set(langs) - {source_lang})
    return {source_lang: 0, **{lang: index + 1 for index, lang in enumerate(others)}}


__all__ = [
    "ContrastiveOutput",
    "ContrastivePretrainer",
    "ContrastiveWeights",
    "crossc_objective",
    "gather_no_grad",
    "gather_with_grad",
    "lang_vocabulary",
    "multi_positive_contrastive_loss",
]
