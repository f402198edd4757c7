"""Cross-C's input: `<cls> left [ENT] mention [ENT] right <sep>` from text and a character span.

`<cls>` and `<sep>` are the tokenizer's own tokens (`[CLS]`/`[SEP]` for BERT's WordPiece, `<s>`/`</s>` for XLM-R's
SentencePiece), and `[ENT]` the marker `from_encoder` adds as a special token; all are inserted by id. As for
FiveFine's template, left context, mention and right context are tokenised separately, so spans never need to align
with word pieces and text without spaces (Chinese, Japanese) is marked exactly where the span says.
"""

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase
from transformers.utils import logging

from ..configuration import CrossCConfig
from ..mention_encoding import (
    EncodedMention,
    context_window,
    neighbor_ids,
    require_special_tokens,
    tokenize_pieces,
    word_start_piece_id,
)


logger = logging.get_logger(__name__)


class MarkerTemplateEncoder:
    """Encodes (text, character span) with `[ENT]` markers on both sides of the mention.

    The mention vector is read at the left marker (`mention_position`). Truncation keeps the mention and both markers
    and cuts the context evenly from its far ends; a mention too long for the window keeps its head. With
    `mask_mention`, the whole mention becomes one mask token (Cross-C's mention masking in pretraining).

    ```python
    >>> encoder = MarkerTemplateEncoder(tokenizer, config)
    >>> tokenizer.decode(encoder.encode("東京 is big.", 0, 2).input_ids)
    '[CLS] [ENT] 東 京 [ENT] is big. [SEP]'
    ```
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: CrossCConfig):
        require_special_tokens(tokenizer, "Cross-C")
        ent_id = tokenizer.convert_tokens_to_ids(config.ent_token)
        if config.ent_token_id is None or ent_id != config.ent_token_id:
            raise ValueError(
                f"The tokenizer maps the marker {config.ent_token!r} to id {ent_id}, the model expects "
                f"{config.ent_token_id}. Load the tokenizer saved with the model, or build both with "
                "`MBertForContrastiveTyping.from_encoder`, which adds the marker."
            )
        self.tokenizer = tokenizer
        self.max_length = config.max_seq_length
        self.cls_id, self.sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.mask_id, self.ent_id = tokenizer.mask_token_id, ent_id
        self.word_start_id = word_start_piece_id(tokenizer)
        self.budget = self.max_length - 4  # start, end and the two markers

    def encode(self, text: str, start: int, end: int, mask_mention: bool = False) -> EncodedMention:
        """Marked input for the mention `text[start:end]`."""
        return self.encode_batch([(text, start, end)], mask_mention)[0]

    def encode_batch(
        self, mentions: Sequence[tuple[str, int, int]], mask_mention: bool = False, prompt: str = "type"
    ) -> list[EncodedMention]:
        """`encode` for many mentions with one tokenizer call (`prompt` exists for interface parity; only "type")."""
        if prompt != "type":
            raise ValueError(f"Cross-C inputs have no {prompt!r} prompt (neighbor-word prediction is FiveFine's).")
        return [
            self._assemble(left, [self.mask_id] if mask_mention else mention, right)
            for left, mention, right in tokenize_pieces(self.tokenizer, mentions)
        ]

    def _assemble(self, left: list[int], mention: list[int], right: list[int]) -> EncodedMention:
        mention_truncated = len(mention) > self.budget
        if mention_truncated:
            logger.warning_once(
                f"A mention of {len(mention)} word pieces does not fit `max_seq_length` ({self.max_length}); it was "
                "truncated and its context dropped (reported as `mention_truncated`)."
            )
            mention, kept_left, kept_right = mention[: self.budget], [], []
        else:
            kept_left, kept_right = context_window(left, right, self.budget - len(mention))
        input_ids = [self.cls_id, *kept_left, self.ent_id, *mention, self.ent_id, *kept_right, self.sep_id]
        left_neighbor, right_neighbor = neighbor_ids(left, right, self.word_start_id, self.cls_id, self.sep_id)
        return EncodedMention(
            input_ids=input_ids,
            mention_position=1 + len(kept_left),
            context_truncated=len(kept_left) < len(left) or len(kept_right) < len(right),
            mention_truncated=mention_truncated,
            left_neighbor_id=left_neighbor,
            right_neighbor_id=right_neighbor,
        )


__all__ = ["MarkerTemplateEncoder"]
