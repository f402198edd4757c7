"""FiveFine (Dai & Zeng, ACL 2023): types as phrases read at the mask slot of a prompt template.

`modeling_fivefine` holds the model, `prompt_template` the `left [ mention ] (Type: [MASK]) right` encoder,
`label_phrases` the words each label is read as, `neighbor_words` the inputs of the neighbor-word prediction
objective (a training `BatchExtension`), and `mlm_head` the stage that fits an MLM head for encoders that
ship without one.
"""

from .label_phrases import label_phrases_for, read_label_phrases
from .modeling_fivefine import BertForPhraseTypeTyping
from .neighbor_words import NWP_KEYS, NeighborWordInputs
from .prompt_template import PromptTemplateEncoder


__all__ = [
    "NWP_KEYS",
    "BertForPhraseTypeTyping",
    "NeighborWordInputs",
    "PromptTemplateEncoder",
    "label_phrases_for",
    "read_label_phrases",
]
