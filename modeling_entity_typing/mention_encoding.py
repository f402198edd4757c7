"""What both families' input templates share: the encoded mention, the context window and one-call tokenisation of
(left context, mention, right context), so that a span never has to align with word-piece boundaries.

Nothing here assumes a vocabulary: it works for WordPiece (`[CLS]`, `[MASK]`, `##`) and SentencePiece (`<s>`,
`<mask>`, `▁`) tokenizers alike. Two SentencePiece habits need care when text is tokenised in separate pieces: a
piece's trailing space becomes a lone word-start piece (`"Mark "` -> `▁Mark ▁`), and a piece that continues a word
(`"東京は"` split after `東京`) starts with one; both carry no meaning and are left out. WordPiece tokenizers never
emit such a piece, so their ids are unchanged.
"""

import re
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


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Ids that text must never produce: every special token but the unknown token, which stands for unknown text."""
    return set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}


def _plain_ids(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    if not texts:
        return []
    # verbose=False: the tokenizer's "sequence length is longer than the maximum" warning does not apply, since the
    # context is cut to the window afterwards (`context_window`); it only filled the logs with false alarms.
    return tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)["input_ids"]


def _without_special_ids(
    tokenizer: PreTrainedTokenizerBase, text: str, special_ids: set[int], spellings: re.Pattern
) -> list[int]:
    """Ids of `text` with every spelled special token broken into ordinary pieces (`"<mask>"` -> `< mask>`).

    The text is cut before (or, at its start, after the first character of) the first special spelling, else in the
    middle, and each part is tokenised again until none yields a special id; a single character that still does
    becomes the unknown token.
    """
    ids = _plain_ids(tokenizer, [text])[0]
    if special_ids.isdisjoint(ids):
        return ids
    if len(text) < 2:
        return [] if tokenizer.unk_token_id is None else [tokenizer.unk_token_id]
    match = spellings.search(text) if spellings.pattern else None
    if match is None:
        cut = len(text) // 2
    else:
        cut = match.start() or (match.end() if match.end() < len(text) else 1)
    head_text = text[:cut].rstrip()
    head = _without_special_ids(tokenizer, head_text, special_ids, spellings) if head_text else []
    tail = _without_special_ids(tokenizer, text[cut:], special_ids, spellings)
    if not text[cut].isspace() and not text[cut - 1].isspace() and tail[:1] == [word_start_piece_id(tokenizer)]:
        tail = tail[1:]
    return head + tail


def tokenize_texts(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no special tokens added), in one tokenizer call; text that spells a special token
    (`"[MASK]"`, `"<mask>"`, `"</s>"`, `"[ENT]"`) never becomes one.

    `split_special_tokens=True` alone does not ensure that: a SentencePiece vocabulary converted to a fast tokenizer
    holds `<s>`, `</s>` and `<mask>` as ordinary pieces, which its model still matches in text. Such texts are
    tokenised again with the spelling cut apart.
    """
    token_ids = _plain_ids(tokenizer, texts)
    special_ids = _special_ids(tokenizer)
    spellings = None
    for row, ids in enumerate(token_ids):
        if not special_ids.isdisjoint(ids):
            if spellings is None:
                tokens = sorted({str(token) for token in tokenizer.all_special_tokens}, key=len, reverse=True)
                spellings = re.compile("|".join(re.escape(token) for token in tokens if token))
            token_ids[row] = _without_special_ids(tokenizer, texts[row], special_ids, spellings)
    return token_ids


def word_start_piece_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The piece a SentencePiece-style tokenizer emits for a bare word start (`▁`, the tokenisation of `" "`), or
    None where a space yields no token (WordPiece) or only the unknown token."""
    return _word_start(tokenizer, _plain_ids(tokenizer, [" "])[0])


def _word_start(tokenizer: PreTrainedTokenizerBase, space_ids: list[int]) -> int | None:
    """`word_start_piece_id` from the ids of `" "`."""
    return space_ids[0] if len(space_ids) == 1 and space_ids[0] != tokenizer.unk_token_id else None


def _segments(text: str, start: int, end: int) -> list[tuple[str, bool]]:
    """(left, mention, right) without trailing whitespace, each with whether it continues the word before it."""
    segments = []
    for begin, stop in ((0, start), (start, end), (end, len(text))):
        segment = text[begin:stop].rstrip()
        glued = begin > 0 and bool(segment) and not segment[0].isspace() and not text[begin - 1].isspace()
        segments.append((segment, glued))
    return segments


def split_pieces(
    tokenizer: PreTrainedTokenizerBase, mentions: Sequence[tuple[str, int, int]]
) -> list[tuple[list[int], list[int], list[int]]]:
    """Token ids of (left context, mention, right context) per mention, in one tokenizer call.

    Special-token spellings in the text stay text (`tokenize_texts`). Trailing whitespace of each part is dropped,
    and so is the lone word-start piece a SentencePiece tokenizer puts before a part that continues the previous
    part's word, so that `"東京は"` split after `東京` reads `東京 | は`, not `東京 | ▁ は`. A mention may come out
    empty (see `tokenize_pieces`).
    """
    texts, glued = [], []
    for text, start, end in mentions:
        for segment, is_glued in _segments(text, start, end):
            texts.append(segment)
            glued.append(is_glued)
    *token_ids, space = tokenize_texts(tokenizer, [*texts, " "])
    word_start = _word_start(tokenizer, space)
    if word_start is not None:
        token_ids = [
            ids[1:] if is_glued and ids[:1] == [word_start] else ids for ids, is_glued in zip(token_ids, glued)
        ]
    return [tuple(token_ids[index : index + 3]) for index in range(0, len(token_ids), 3)]


def tokenize_pieces(
    tokenizer: PreTrainedTokenizerBase, mentions: Sequence[tuple[str, int, int]]
) -> list[tuple[list[int], list[int], list[int]]]:
    """`split_pieces`, failing with the mention's text when a mention has no token at all."""
    triples = split_pieces(tokenizer, mentions)
    for (text, start, end), (_, mention, _) in zip(mentions, triples):
        if not mention:
            raise ValueError(
                f"The mention {text[start:end]!r} has no word pieces for this tokenizer (it holds only characters "
                "the tokenizer drops, such as control characters or lone combining marks); choose a span over a word."
            )
    return triples


def mention_token_ids(tokenizer: PreTrainedTokenizerBase, mentions: Sequence[tuple[str, int, int]]) -> list[list[int]]:
    """The mention's token ids exactly as `split_pieces` gives them, without tokenising the context (only the
    character before the mention matters: whether the mention continues a word)."""
    clipped = [
        (text[max(start - 1, 0) : end], min(start, 1), min(start, 1) + end - start) for text, start, end in mentions
    ]
    return [mention for _, mention, _ in split_pieces(tokenizer, clipped)]


def neighbor_ids(
    left: list[int], right: list[int], word_start: int | None, left_edge: int, right_edge: int
) -> tuple[int, int]:
    """The word pieces next to the mention (FiveFine's neighbor-word targets), skipping the lone word-start piece,
    which names no word; `left_edge` / `right_edge` (the template's start and end tokens) where a side is empty."""
    left_id = next((token for token in reversed(left) if token != word_start), left_edge)
    return left_id, next((token for token in right if token != word_start), right_edge)


def require_special_tokens(tokenizer: PreTrainedTokenizerBase, family: str) -> None:
    """Fail with the fix when `tokenizer` lacks a start, end, mask or padding token: every template needs all four."""
    for name in ("cls_token_id", "sep_token_id", "mask_token_id", "pad_token_id"):
        if getattr(tokenizer, name) is None:
            raise ValueError(
                f"The tokenizer has no `{name[:-3]}`; {family} needs start, end, mask and padding tokens "
                "(`[CLS]`, `[SEP]`, `[MASK]`, `[PAD]` in BERT's vocabulary, `<s>`, `</s>`, `<mask>`, `<pad>` in "
                "XLM-R's)."
            )


__all__ = [
    "EncodedMention",
    "context_window",
    "mention_token_ids",
    "neighbor_ids",
    "require_special_tokens",
    "split_pieces",
    "tokenize_pieces",
    "tokenize_texts",
    "word_start_piece_id",
]
