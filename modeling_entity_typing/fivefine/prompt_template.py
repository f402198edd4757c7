"""FiveFine's prompt template: `[CLS] left [ mention ] (Type: [MASK]) right [SEP]` from text and a character span.

Left context, mention and right context are tokenised separately, as in the reference code
(`dataloadutils.uf_example_to_qic_bert_token_id_seq`), so a span never has to align with word-piece boundaries.
"""

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase
from transformers.utils import logging

from ..configuration import FiveFineConfig
from ..mention_encoding import EncodedMention, context_window, tokenize_pieces


logger = logging.get_logger(__name__)

PROMPTS = ("type", "left", "right")


class PromptTemplateEncoder:
    """Encodes (text, character span) with FiveFine's prompt template.

    Truncation keeps the mention whole and cuts the context from its far ends, evenly on both sides (the reference
    cuts the right context first; an even window suits long documents better and is identical when nothing is cut).
    Only when the mention alone does not fit are both contexts dropped and the mention's tail cut.

    ```python
    >>> encoder = PromptTemplateEncoder(tokenizer, config)
    >>> encoded = encoder.encode("Mark Twain wrote novels.", 0, 10)
    >>> tokenizer.decode(encoded.input_ids)
    '[CLS] [ mark twain ] ( type : [MASK] ) wrote novels. [SEP]'
    ```
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: FiveFineConfig):
        for name in ("cls_token_id", "sep_token_id", "mask_token_id", "pad_token_id"):
            if getattr(tokenizer, name) is None:
                raise ValueError(f"The tokenizer has no `{name[:-3]}`; FiveFine needs a BERT-style tokenizer.")
        self.tokenizer = tokenizer
        self.max_length = config.max_seq_length
        self.cls_id = tokenizer.cls_token_id
        self.sep_id = tokenizer.sep_token_id
        self.mask_id = tokenizer.mask_token_id
        self.open_ids = self._tokenize([config.mention_open])[0]
        prompts = [config.type_prompt, config.left_word_prompt, config.right_word_prompt]
        prompt_ids = tokenizer(
            [prompt.replace("{mask}", tokenizer.mask_token) for prompt in prompts], add_special_tokens=False
        )["input_ids"]
        for prompt, ids in zip(prompts, prompt_ids):
            if ids.count(self.mask_id) != 1:
                raise ValueError(
                    f"The prompt {prompt!r} must tokenise to exactly one mask token, got {ids.count(self.mask_id)} "
                    f"with this tokenizer; check that {tokenizer.mask_token!r} is a special token."
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

    def _tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]

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
        left_neighbor = left[-1] if left else self.cls_id
        right_neighbor = right[0] if right else self.sep_id
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
