"""Label sets as data: labels, the phrase the model reads for each, and the phrases' token ids.

FiveFine scores a mention against *phrases*, so one trained model serves any schema: a label set is an ordered list
of labels plus one phrase each, never a change of architecture.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .configuration.configuration_entity_typing import check_labels
from .mention_encoding import tokenize_texts, word_start_piece_id
from .mention_inputs import check_encodable


def default_label_phrase(label: str) -> str:
    """FiveFine's default phrase: last path segment, `_` to space (`/organization/sports_team` -> `sports team`)."""
    segments = [segment for segment in label.split("/") if segment.strip()]
    return (segments[-1] if segments else label).replace("_", " ").strip()


@dataclass(frozen=True)
class LabelSet:
    """An ordered label set with one phrase per label."""

    labels: tuple[str, ...]
    phrases: tuple[str, ...]

    @classmethod
    def create(
        cls, labels: Sequence[str] | Mapping[str, str], phrases: Sequence[str] | Mapping[str, str] | None = None
    ) -> "LabelSet":
        """Build from a list of labels (phrases by the default rule), a `{label: phrase}` mapping, or both lists.

        Raises `TypeError`/`ValueError` naming the offending entry: labels must be non-empty, unique strings.
        """
        if isinstance(labels, Mapping):
            if phrases is not None:
                raise ValueError("Give phrases either as the values of a `{label: phrase}` mapping or as `phrases`.")
            labels, phrases = list(labels.keys()), list(labels.values())
        if isinstance(labels, str) or not isinstance(labels, Sequence):
            raise TypeError(
                f"Labels must be a list of strings or a {{label: phrase}} dict, got {type(labels).__name__}."
            )
        labels = list(labels)
        if not labels:
            raise ValueError("The label set is empty; give at least one label.")
        check_labels(labels)
        for index, label in enumerate(labels):
            check_encodable(label, f"Label {index} ({label!r})")
        if phrases is None:
            phrases = [default_label_phrase(label) for label in labels]
        elif isinstance(phrases, Mapping):
            phrases = [phrases.get(label) or default_label_phrase(label) for label in labels]
        else:
            phrases = list(phrases)
            if len(phrases) != len(labels):
                raise ValueError(f"Got {len(phrases)} phrases for {len(labels)} labels; give one phrase per label.")
        for label, phrase in zip(labels, phrases):
            if not isinstance(phrase, str) or not phrase.strip():
                raise ValueError(f"The phrase of label {label!r} must be a non-empty string, got {phrase!r}.")
            check_encodable(phrase, f"The phrase of label {label!r}")
        return cls(tuple(labels), tuple(phrases))

    def tokenize(self, tokenizer: PreTrainedTokenizerBase) -> list[list[int]]:
        """Token ids of each phrase (no special tokens); an error names any phrase that yields no token.

        A phrase that spells a special token (`"[MASK]"`, `"<mask>"`) reads as text. Lone word-start pieces of a
        SentencePiece tokenizer (the `▁` before `東京` in `▁ 東京`) name no word and are left out of a phrase that has
        other pieces; WordPiece ids are unchanged.
        """
        token_ids = tokenize_texts(tokenizer, [phrase.strip() for phrase in self.phrases])
        word_start = word_start_piece_id(tokenizer)
        for row, (label, phrase, ids) in enumerate(zip(self.labels, self.phrases, token_ids)):
            if not ids:
                raise ValueError(f"The phrase {phrase!r} of label {label!r} has no tokens for this tokenizer.")
            if word_start in ids and set(ids) != {word_start}:
                token_ids[row] = [token for token in ids if token != word_start]
        return token_ids

    def __len__(self) -> int:
        return len(self.labels)


def pad_phrase_token_ids(token_ids: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad phrase ids to the longest phrase: `(num_types, max_len)` ids and a boolean mask."""
    max_length = max(len(ids) for ids in token_ids)
    padded = torch.full((len(token_ids), max_length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(token_ids), max_length), dtype=torch.bool)
    for row, ids in enumerate(token_ids):
        padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = True
    return padded, mask


__all__ = ["LabelSet", "default_label_phrase", "pad_phrase_token_ids"]
