"""Input corruption for FiveFine's MLM term, on top of transformers' `DataCollatorForLanguageModeling`."""

import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase


# Reference split of chosen tokens (hldai/fivefine `utils/bertutils.py`): 80% mask token, 2% random, 18% unchanged.
MASK_REPLACE_PROB = 0.8
RANDOM_REPLACE_PROB = 0.02


def corrupt_for_mlm(
    input_ids: torch.Tensor,
    tokenizer: PreTrainedTokenizerBase,
    mlm_probability: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(corrupted_ids, mlm_labels)` for the MLM term; the typing input and the MLM input are the same sequence.

    Special tokens (the tokenizer's start, end, padding and unknown tokens, e.g. `[CLS]`/`<s>`, and the template's
    typing mask, `[MASK]`/`<mask>`) are never chosen, so the typing slot is never an MLM target and never altered.
    Labels are -100 where there is no target.
    """
    collator = DataCollatorForLanguageModeling(
        tokenizer,
        mlm_probability=mlm_probability,
        mask_replace_prob=MASK_REPLACE_PROB,
        random_replace_prob=RANDOM_REPLACE_PROB,
        return_tensors="pt",
    )
    collator.generator = generator
    special = torch.isin(input_ids, torch.tensor(tokenizer.all_special_ids, device=input_ids.device))
    return collator.torch_mask_tokens(input_ids.clone(), special_tokens_mask=special)


__all__ = ["corrupt_for_mlm"]
