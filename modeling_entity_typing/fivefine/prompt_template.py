"""FiveFine's prompt template: `<cls> left [ mention ] (Type: <mask>) right <sep>` from text and a character span.

`<cls>`, `<mask>` and `<sep>` are the tokenizer's own tokens (`[CLS]`, `[MASK]`, `[SEP]` for BERT's WordPiece,
`<s>`, `<mask>`, `</s>` for XLM-R's SentencePiece), always inserted by id. Left context, mention and right context are
tokenised separately, as in the reference code (`dataloadutils.uf_example_to_qic_bert_token_id_seq`), so a span never
has to align with word-piece boundaries.
"""

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase
from transformers.utils import logging

from ..configuration import FiveFineConfig
from ..configuration.configuration_fivefine import MASK_PLACEHOLDER
from ..mention_encoding import (
    EncodedMention,
    context_window,
    neighbor_ids,
    require_special_tokens,
    tokenize_pieces,
    tokenize_texts,
    word_start_piece_id,
)


logger = logging.get_logger(__name__)

PROMPTS = ("type", "left", "right")


class PromptTemplateEncoder:
    """Encodes (text, character span) with FiveFine's prompt template.

    Truncation keeps the mention whole and cuts the context from its far ends, evenly on both sides (the reference
    cuts the right context first; an even window suits long documents better and is identical when nothing is cut).
    Only when the mention alone does not fit are both contexts dropped and the mention's tail cut.

    The mask slot is inserted by id between the prompt's text before and after `{mask}`, so it needs no spelling and
    no particular whitespace handling of the mask token (a SentencePiece tokenizer would otherwise read
    `"Type: <mask>"` as `Type : ▁ <mask>`). Template text the tokenizer cannot read (e.g. `[` in a vocabulary
    without it) is logged once: it then reads as the unknown token.

    ```python
    >>> encoder = PromptTemplateEncoder(tokenizer, config)
    >>> encoded = encoder.encode("Mark Twain wrote novels.", 0, 10)
    >>> tokenizer.decode(encoded.input_ids)
    '[CLS] [ mark twain ] ( type : [MASK] ) wrote novels. [SEP]'
    ```
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: FiveFineConfig):
        require_special_tokens(tokenizer, "FiveFine")
        self.tokenizer = tokenizer
        self.max_length = config.max_seq_length
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.mask_id = tokenizer.mask_token_id
        self.word_start_id = word_start_piece_id(tokenizer)
        self.open_ids = tokenize_texts(tokenizer, [config.mention_open])[0]
        prompts = [config.type_prompt, config.left_word_prompt, config.right_word_prompt]
        prompt_ids = [self._prompt_ids(prompt) for prompt in prompts]
        for prompt, ids in zip(prompts, prompt_ids):
            if ids.count(self.mask_id) != 1:
                raise ValueError(
                    f"The prompt {prompt!r} must tokenise to exactly one mask token, got {ids.count(self.mask_id)} "
                    f"with this tokenizer; write the slot as {MASK_PLACEHOLDER!r} and do not spell "
                    f"{tokenizer.mask_token!r} in the prompt's text."
                )
        unknown = [
            text
            for text, ids in zip([config.mention_open, *prompts], [self.open_ids, *prompt_ids])
            if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids
        ]
        if unknown:
            logger.warning_once(
                f"This tokenizer reads part of the template text {unknown} as its unknown token "
                f"{tokenizer.unk_token!r}; the model still works, but the text carries less meaning. Set "
                "`mention_open` / `type_prompt` / `left_word_prompt` / `right_word_prompt` to text in its vocabulary."
            )
        self.prompt_ids = dict(zip(PROMPTS, prompt_ids))
        # Word pieces left for mention + context under each prompt.
        self.budgets = {
            name: self.max_length - 2 - len(self.open_ids) - len(ids) for name, ids in self.prompt_ids.items()
        }
        if min(self.budgets.values()) < 1:
            raise ValueError(
                f"`max_seq_length` ({self.max_length}) leaves no room for the mention after the template."
            )

    def _prompt_ids(self, prompt: str) -> list[int]:
        """Ids of `prompt` with the mask id at `{mask}`: the text before it (trailing whitespace dropped) and after it
        are tokenised as the tokenizer reads text beside a special token, without the lone word-start piece a
        SentencePiece tokenizer would give a part that continues the word before it. Special tokens spelled in the
        prompt (configuration, not user text) are kept, so that the mask count can be checked."""
        before, after = prompt.split(MASK_PLACEHOLDER, 1)
        before_ids, after_ids = self.tokenizer([before.rstrip(), after], add_special_tokens=False)["input_ids"]
        if after[:1].strip() and after_ids[:1] == [self.word_start_id]:
            after_ids = after_ids[1:]
        return [*before_ids, self.mask_id, *after_ids]

    def encode(self, text: str, start: int, end: int, prompt: str = "type") -> EncodedMention:
        """Template for the mention `text[start:end]`; `prompt` is `"type"`, or `"left"`/`"right"` for NWP."""
        return self.encode_batch([(text, start, end)], prompt)[0]

    def encode_batch(self, mentions: Sequence[tuple[str, int, int]], prompt: str = "type") -> list[EncodedMention]:
        """`encode` for many mentions with one tokenizer call."""
        if prompt not in PROMPTS:
            raise ValueError(f"`prompt` must be one of {PROMPTS}, got {prompt!r}.")
        return [
            self._assemble(left, mention, right, prompt)
            for left, mention, right in tokenize_pieces(self.tokenizer, mentions)
        ]

    def _assemble(self, left: list[int], mention: list[int], right: list[int], prompt: str) -> EncodedMention:
        prompt_ids, budget = self.prompt_ids[prompt], self.budgets[prompt]
        left_neighbor, right_neighbor = neighbor_ids(left, right, self.word_start_id, self.cls_id, self.sep_id)
        mention_truncated = len(mention) > budget
        if mention_truncated:
            logger.warning_once(
                f"A mention of {len(mention)} word pieces does not fit `max_seq_length` ({self.max_length}); it was "
                "truncated and its context dropped (reported as `mention_truncated`)."
            )
            mention, kept_left, kept_right = mention[:budget], [], []
        else:
            kept_left, kept_right = context_window(left, right, budget - len(mention))
        prefix = [self.cls_id, *kept_left, *self.open_ids, *mention]
        input_ids = [*prefix, *prompt_ids, *kept_right, self.sep_id]
        return EncodedMention(
            input_ids=input_ids,
            mention_position=len(prefix) + prompt_ids.index(self.mask_id),
            context_truncated=len(kept_left) < len(left) or len(kept_right) < len(right),
            mention_truncated=mention_truncated,
            left_neighbor_id=left_neighbor,
            right_neighbor_id=right_neighbor,
        )


__all__ = ["EncodedMention", "PromptTemplateEncoder", "context_window", "tokenize_pieces"]
