"""`EntityTypingPreTrainedModel`: Hugging Face plumbing shared by the families, and nothing family-specific."""

import torch
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLMPredictionHead, BertPreTrainedModel


class EntityTypingPreTrainedModel(PreTrainedModel):
    """Base of the package's models: BERT checkpoints load by key (`bert.*`), gradient checkpointing, SDPA.

    Weight init matches `BertPreTrainedModel`, so a fresh MLM head or encoder starts exactly as in `transformers`;
    families add their own modules' init by overriding `_init_weights` and calling this one.
    """

    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["BertLayer"]
    _can_record_outputs = BertPreTrainedModel._can_record_outputs

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)


__all__ = ["EntityTypingPreTrainedModel"]
