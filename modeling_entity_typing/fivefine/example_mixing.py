"""Label examples in FiveFine's encoder type space: examples move a label's type vector towards its mentions.

A label with examples gets the type vector `normalize(a * p + (1 - a) * e)`, where `p` is its phrase vector at unit
length (what `CosineTypeScorer.type_side` compares), `e` the mean of its examples' unit mention vectors (the mention
side's direction, before scale and bias), also at unit length, and `a` is `config.label_example_weight`, the weight of
the phrase: `a = 1` is zero-shot typing from the phrase, `a = 0` the examples' prototype. Both sides at unit length,
`a` weighs two directions, however spread a label's examples are. Labels without examples keep their phrase vector.
Both vectors are read by the model itself, so no weight changes: examples help with no training.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from ..label_examples import LabelExamples
from ..prototypes import mention_embeddings
from .sentence_space import CosineTypeScorer


class ExampleVectors(NamedTuple):
    """Per label with examples, its row in the label set and the mean unit vector of its examples."""

    rows: torch.Tensor  # (k,) long
    vectors: torch.Tensor  # (k, hidden)

    @classmethod
    def given(cls, rows: torch.Tensor | None, vectors: torch.Tensor | None) -> "ExampleVectors | None":
        """`forward`'s `type_example_rows` and `type_example_vectors`, checked: both or neither, one vector a row."""
        if rows is None and vectors is None:
            return None
        if rows is None or vectors is None or rows.shape != vectors.shape[:1]:
            shapes = [None if tensor is None else tuple(tensor.shape) for tensor in (rows, vectors)]
            raise ValueError(
                "Pass `type_example_rows` `(k,)` and `type_example_vectors` `(k, hidden)` together, one vector per "
                f"row, as `model.label_example_inputs(examples, tokenizer)` gives them; got shapes {shapes}."
            )
        return cls(rows, vectors)


@torch.no_grad()
def mean_example_directions(model, tokenizer: PreTrainedTokenizerBase, examples: LabelExamples) -> torch.Tensor:
    """`(len(examples.by_label), hidden)`: per label, the mean of its examples' unit mention vectors, read by `model`
    (each distinct mention once)."""
    mentions = examples.mentions()
    directions = CosineTypeScorer.direction(mention_embeddings(model, tokenizer, mentions))
    row_of = {mention: row for row, mention in enumerate(mentions)}
    return torch.stack(
        [directions[[row_of[(m.text, m.start, m.end)] for m in items]].mean(dim=0) for _, items in examples.by_label]
    )


def rows_of(labels: tuple[str, ...], label_ids: dict[str, int], device: torch.device) -> torch.Tensor:
    """The label-set rows of `labels`, as a `(k,)` long tensor on `device`."""
    return torch.tensor([label_ids[label] for label in labels], dtype=torch.long, device=device)


def merge_examples(stored: ExampleVectors | None, given: ExampleVectors | None) -> ExampleVectors | None:
    """`stored` with `given` added; a label in both keeps the `given` examples."""
    if stored is None or given is None:
        return given if stored is None else stored
    kept = ~torch.isin(stored.rows, given.rows)
    return ExampleVectors(
        torch.cat([stored.rows[kept], given.rows]),
        torch.cat([stored.vectors[kept], given.vectors.to(stored.vectors.dtype)]),
    )


def mix_examples(type_vectors: torch.Tensor, examples: ExampleVectors | None, phrase_weight: float) -> torch.Tensor:
    """`(types, hidden + 1)` type vectors (`CosineTypeScorer.type_side`) with the rows of `examples` mixed in."""
    if examples is None or examples.rows.numel() == 0 or phrase_weight == 1.0:
        return type_vectors
    phrases = CosineTypeScorer.direction(type_vectors[examples.rows])
    prototypes = F.normalize(examples.vectors.to(phrases.dtype), dim=-1)
    mixed = phrase_weight * phrases + (1.0 - phrase_weight) * prototypes
    return type_vectors.index_copy(0, examples.rows, CosineTypeScorer.type_side(mixed))


def content_key(examples: ExampleVectors | None) -> tuple | None:
    """A key of the examples' values, for the type cache (equal examples hit it whatever tensors carry them)."""
    if examples is None:
        return None
    rows, vectors = examples.rows.cpu(), examples.vectors.detach().float().cpu()
    return (hash(rows.numpy().tobytes()), tuple(vectors.shape), hash(vectors.numpy().tobytes()))


__all__ = ["ExampleVectors", "content_key", "mean_example_directions", "merge_examples", "mix_examples", "rows_of"]
