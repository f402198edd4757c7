"""Cross-C (Han et al., ACL 2022): cross-lingual contrastive typing with `[ENT]` markers.

`modeling_crossc` holds the model, `marker_template` its marked-input encoder; the pretraining stage is
`distant_supervision` (entity-pair groups from linked corpora), `translation` (machine-translated copies, with
`bergamot_translation` the offline en <-> pt translator),
`contrastive_batches` (group batches) and `contrastive` (the mono- and cross-lingual objectives).
"""

from .bergamot_translation import FastTranslateTranslator
from .contrastive import ContrastiveWeights, crossc_objective, multi_positive_contrastive_loss
from .distant_supervision import load_entity_linked, load_kb, mine_positive_groups
from .marker_template import MarkerTemplateEncoder
from .modeling_crossc import UNTYPED_LABEL, MBertForContrastiveTyping
from .translation import Seq2SeqTranslator, Translator, translate_mentions


__all__ = [
    "UNTYPED_LABEL",
    "ContrastiveWeights",
    "FastTranslateTranslator",
    "MBertForContrastiveTyping",
    "MarkerTemplateEncoder",
    "Seq2SeqTranslator",
    "Translator",
    "crossc_objective",
    "load_entity_linked",
    "load_kb",
    "mine_positive_groups",
    "multi_positive_contrastive_loss",
    "translate_mentions",
]
