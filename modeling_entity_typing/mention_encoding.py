"""What both families' input templates share: the encoded mention, the context window and one-call tokenisation of
(left context, mention, right context), so that a span never has to align with word-piece boundaries.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class EncodedMention:
    """One templated input.

    `mention_position` is the index of the prompt's mask slot. `context_truncated` / `mention_truncated` say what
    had to be cut to fit `max_length`.
    """

    input_ids: list[int]
    mention_position: int
    context_truncated: bool
    mention_truncated: bool
    left_neighbor_id: int
    right_neighbor_id: int

    @property
    def truncated(self) -> bool:
        return self.context_truncated or self.mention_truncated


def context_window(left: list[int], right: list[int], budget: int) -> tuple[list[int], list[int]]:
    """Keep at most `budget` context tokens, those nearest the mention, split evenly; a short side lends the rest."""
    left_keep = min(len(left), max(budget // 2, budget - len(right)))
    right_keep = min(len(right), budget - left_keep)
    return left[len(left) - left_keep :], right[:right_keep]


def tokenize_pieces(
    tokenizer: PreTrainedTokenizerBase, mentions: Sequence[tuple[str, int, int]]
) -> list[tuple[list[int], list[int], list[int]]]:
    """Word pieces of (left context, mention, right context) per mention, in one tokenizer call.

    `split_special_tokens`: text that spells "[MASK]", "[SEP]" or "[ENT]" must not create real special tokens.
    """
    pieces = []
    for text, start, end in mentions:
        pieces.extend((text[:start], text[start:end], text[end:]))
    token_ids = tokenizer(pieces, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    triples = []
    for index, (text, start, end) in enumerate(mentions):
        left, mention, right = token_ids[3 * index : 3 * index + 3]
        if not mention:
            raise ValueError(
                f"The mention {text[start:end]!r} has no word pieces for this tokenizer (it holds only characters "
                "the tokenizer drops, such as control characters or lone combining marks); choose a span over a word."
            )
        triples.append((left, mention, right))
    return triples


__all__ = ["EncodedMention", "context_window", "tokenize_pieces"]
