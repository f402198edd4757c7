"""Type prototypes: the mean mention vector of a few examples per type, for zero-shot typing without training.

>>> prototypes = type_prototypes(model, tokenizer, {"city": [("Lyon is lovely.", "Lyon")], ...})
>>> model.set_type_prototypes(prototypes)      # a family with learned type vectors: scale · cos(prototype, mention)
>>> pipeline("entity-typing", model=model, tokenizer=tokenizer)("Kyoto at dawn.", span="Kyoto")
"""

from collections.abc import Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase

from .contract import EntityTypingModel
from .mention_inputs import resolve_span


Example = tuple[str, tuple[int, int] | str]


def _examples_by_label(examples) -> dict[str, list[tuple[str, int, int]]]:
    """`{label: [(text, span), ...]}` or records `{"text", "start", "end", "labels"}` -> `{label: [mentions]}`."""
    by_label: dict[str, list[tuple[str, int, int]]] = {}
    if isinstance(examples, Mapping):
        for label, items in examples.items():
            if isinstance(items, (str, tuple)):
                raise TypeError(f"Examples of {label!r} must be a list of (text, span) pairs, got {items!r}.")
            by_label[label] = [(text, *resolve_span(text, span)) for text, span in items]
    else:
        for index, record in enumerate(examples):
            missing = {"text", "start", "end", "labels"} - set(record)
            if missing:
                raise ValueError(f"Record {index} lacks {sorted(missing)}; records need text, start, end and labels.")
            text = record["text"]
            start, end = resolve_span(text, (record["start"], record["end"]))
            for label in record["labels"]:
                by_label.setdefault(label, []).append((text, start, end))
    empty = [label for label, mentions in by_label.items() if not mentions]
    if not by_label or empty:
        raise ValueError(f"Every type needs at least one example; none for {empty or 'any type'}.")
    return by_label


@torch.no_grad()
def type_prototypes(
    model: EntityTypingModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Mapping[str, Sequence[Example]] | Iterable[Mapping],
    batch_size: int = 32,
) -> dict[str, torch.Tensor]:
    """`{label: prototype}`: the mean of the unit-length mention vectors of each label's examples.

    `examples` is `{label: [(text, (start, end) or mention string), ...]}` (e.g. a few typed example sentences per
    type) or labelled records as read by `load_mentions` (each label of a record gets its vector).
    """
    by_label = _examples_by_label(examples)
    mentions = sorted({mention for items in by_label.values() for mention in items})
    unit = dict(zip(mentions, mention_embeddings(model, tokenizer, mentions, batch_size)))
    return {label: torch.stack([unit[mention] for mention in items]).mean(dim=0) for label, items in by_label.items()}


@torch.no_grad()
def mention_embeddings(
    model: EntityTypingModel,
    tokenizer: PreTrainedTokenizerBase,
    mentions: Sequence[tuple[str, int, int]],
    batch_size: int = 32,
) -> torch.Tensor:
    """Unit-length mention vectors `(len(mentions), hidden)` of `(text, start, end)` mentions, in eval mode (the
    model's training mode is restored): what prototypes average and what the geometry of an encoder is read from."""
    encoder = model.get_mention_encoder(tokenizer)
    was_training = model.training
    model.eval()
    vectors = []
    for start in range(0, len(mentions), batch_size):
        encoded = encoder.encode_batch(mentions[start : start + batch_size])
        padded = tokenizer.pad({"input_ids": [item.input_ids for item in encoded]}, return_tensors="pt")
        positions = torch.tensor([item.mention_position for item in encoded])
        inputs = [padded["input_ids"], padded["attention_mask"], positions]
        vectors.append(model.embed_mentions(*(tensor.to(model.device) for tensor in inputs)).float().cpu())
    model.train(was_training)
    return F.normalize(torch.cat(vectors), dim=-1)


__all__ = ["mention_embeddings", "type_prototypes"]
