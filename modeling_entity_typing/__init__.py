"""Fine-grained and ultra-fine entity typing as Hugging Face models.

`import modeling_entity_typing` registers every model family with `AutoConfig` / `AutoModel` and the
`"entity-typing"` task with `transformers.pipeline`; this is the one place where registration happens.
"""

from transformers import AutoConfig, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration import CrossCConfig, FiveFineConfig
from .contract import EntityTypingModel
from .crossc import (
    ContrastiveWeights,
    MarkerTemplateEncoder,
    MBertForContrastiveTyping,
    Seq2SeqTranslator,
    Translator,
    crossc_objective,
    load_entity_linked,
    load_kb,
    mine_positive_groups,
    multi_positive_contrastive_loss,
    translate_mentions,
)
from .data import MentionDataError, corrupt_for_mlm, load_mentions, sample_k_shot
from .decision import decide, label_ancestors
from .evaluation import load_typing_metric, typing_scores
from .export.cpu_inference import CPU_MODES, optimize_for_cpu
from .fivefine import BertForPhraseTypeTyping, PromptTemplateEncoder, label_phrases_for, read_label_phrases
from .label_sets import LabelSet, default_label_phrase
from .mention_encoding import EncodedMention
from .modeling_outputs import EntityTypingOutput
from .pipelines import EntityTypingInputError, EntityTypingPipeline
from .prototypes import type_prototypes


__version__ = "0.1.0.dev0"

AutoConfig.register(FiveFineConfig.model_type, FiveFineConfig, exist_ok=True)
AutoModel.register(FiveFineConfig, BertForPhraseTypeTyping, exist_ok=True)
AutoConfig.register(CrossCConfig.model_type, CrossCConfig, exist_ok=True)
AutoModel.register(CrossCConfig, MBertForContrastiveTyping, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline("entity-typing", pipeline_class=EntityTypingPipeline, pt_model=AutoModel)

__all__ = [
    "CPU_MODES",
    "BertForPhraseTypeTyping",
    "ContrastiveWeights",
    "CrossCConfig",
    "EncodedMention",
    "EntityTypingOutput",
    "EntityTypingInputError",
    "EntityTypingModel",
    "EntityTypingPipeline",
    "FiveFineConfig",
    "LabelSet",
    "MBertForContrastiveTyping",
    "MarkerTemplateEncoder",
    "MentionDataError",
    "PromptTemplateEncoder",
    "Seq2SeqTranslator",
    "Translator",
    "corrupt_for_mlm",
    "crossc_objective",
    "decide",
    "default_label_phrase",
    "label_ancestors",
    "label_phrases_for",
    "load_entity_linked",
    "load_kb",
    "load_mentions",
    "load_typing_metric",
    "mine_positive_groups",
    "multi_positive_contrastive_loss",
    "optimize_for_cpu",
    "read_label_phrases",
    "sample_k_shot",
    "translate_mentions",
    "type_prototypes",
    "typing_scores",
]
