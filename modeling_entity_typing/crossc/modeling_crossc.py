"""Cross-C's `MBertForContrastiveTyping` (Han et al., "Cross-Lingual Contrastive Learning for Fine-Grained Entity
Typing for Low-Resource Languages", ACL 2022; code: thunlp/CrossET).

A (multilingual) BERT reads `<cls> left [ENT] mention [ENT] right <sep>` (its tokenizer's start and end tokens,
`[CLS]`/`[SEP]` for WordPiece, `<s>`/`</s>` for SentencePiece); the mention vector m is the final hidden
state of the left marker; each type is a row t of a bias-free type matrix and P(t|x) = sigmoid(t·m), trained with
BCE. Contrastive pretraining (`modeling_entity_typing.crossc.contrastive`) works on the same m. Where the paper and its
unfinished prototype code disagree, the choice made is noted where it is made.
"""

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertModel
from transformers.utils import logging

from ..calibration import calibrated_scores
from ..configuration import CrossCConfig
from ..label_examples import label_examples_unsupported
from ..label_sets import LabelSet
from ..layers import first_token_positions, gather_positions
from ..losses import multilabel_bce
from ..modeling_outputs import EntityTypingOutput
from ..modeling_utils import EntityTypingPreTrainedModel
from .marker_template import MarkerTemplateEncoder


logger = logging.get_logger(__name__)

# The label of the single placeholder row a model has before it has learned any type (after contrastive pretraining,
# or built only to receive a label set): `set_label_set` never keeps it, so a real type named like it starts fresh.
UNTYPED_LABEL = "[untyped]"


def _label_list(labels: Sequence[str] | Mapping[str, str]) -> list[str]:
    """Labels in order; a `{label: phrase}` mapping (FiveFine's form) gives its keys, since Cross-C types are rows."""
    return list(LabelSet.create(labels).labels)


class MBertForContrastiveTyping(EntityTypingPreTrainedModel):
    r"""
    Cross-C entity typer: a marker-based mention encoder and one learned vector per type.

    The label set is fixed by training (`config.id2label`); change it with [`~MBertForContrastiveTyping.set_label_set`]
    (rows of known labels are kept, new ones start fresh) or type without training from a few examples per type with
    [`~MBertForContrastiveTyping.set_type_prototypes`].

    ```python
    >>> model, tokenizer = MBertForContrastiveTyping.from_encoder("bert-base-multilingual-cased", ["person", "city"])
    >>> encoded = model.get_mention_encoder(tokenizer).encode("東京は大きい。", 0, 2)
    >>> model(torch.tensor([encoded.input_ids])).logits  # (1, 2)
    ```
    """

    config: CrossCConfig
    head_parameter_prefixes = ("type_matrix.",)

    def __init__(self, config: CrossCConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        # Paper and code: a bias-free linear layer whose rows are the type vectors.
        self.type_matrix = nn.Linear(config.hidden_size, config.num_labels, bias=False)
        self.post_init()

    # ----------------------------------------------------------------------------------------------------- label set
    def set_label_set(
        self,
        labels: Sequence[str] | Mapping[str, str],
        tokenizer: PreTrainedTokenizerBase | None = None,
        label_phrases: object = None,
        generator: torch.Generator | None = None,
        *,
        examples: Mapping[str, Sequence] | None = None,
    ) -> list[str]:
        """Make `labels` the label set: rows of labels the model already has are kept, new rows start from
        N(0, `initializer_range`). `tokenizer` and `label_phrases` are the contract's arguments and unused here
        (Cross-C's types are learned vectors, not phrases); `examples` are refused (`supports_label_examples`).

        With a (CPU) `generator`, the i-th label's fresh row is the i-th row of one draw from it, whatever else the
        model holds: two models given the same label set and an equally seeded generator start from the same type
        rows, so a comparison between their encoders is not confounded by the type initialisation."""
        if examples is not None:
            raise label_examples_unsupported(self)
        labels = _label_list(labels)
        old_rows = {
            self.config.id2label[index]: index
            for index in range(self.type_matrix.out_features)
            if self.config.id2label[index] != UNTYPED_LABEL
        }
        weight = self.type_matrix.weight
        new_weight = torch.randn(len(labels), weight.size(1), generator=generator) * self.config.initializer_range
        new_weight = new_weight.to(dtype=weight.dtype, device=weight.device)
        kept = [(row, old_rows[label]) for row, label in enumerate(labels) if label in old_rows]
        with torch.no_grad():
            for row, old_row in kept:
                new_weight[row] = weight[old_row]
        self._install_type_matrix(labels, new_weight)
        logger.info(f"Label set of {len(labels)} types: {len(kept)} rows kept, {len(labels) - len(kept)} new.")
        return labels

    @torch.no_grad()
    def set_type_prototypes(self, prototypes: Mapping[str, torch.Tensor], scale: float | None = None) -> None:
        """Zero-shot typing: each label's vector becomes a prototype (e.g. the mean mention vector of a few examples,
        see `type_prototypes`) and scores switch to `scale` · cosine, so prototypes of any norm compare fairly."""
        labels = _label_list(list(prototypes))
        vectors = torch.stack([torch.as_tensor(prototypes[label]).float() for label in labels])
        if vectors.shape[1] != self.config.hidden_size:
            raise ValueError(f"Prototypes must have {self.config.hidden_size} dimensions, got {vectors.shape[1]}.")
        self._install_type_matrix(labels, vectors.to(self.type_matrix.weight))
        self.config.scoring = "cosine"
        if scale is not None:
            self.config.cosine_scale = scale

    def _install_type_matrix(self, labels: list[str], weight: torch.Tensor) -> None:
        """A new bias-free type matrix with `weight` rows (trainable if the old one was) and the matching label set."""
        trainable = self.type_matrix.weight.requires_grad
        self.type_matrix = nn.Linear(weight.size(1), len(labels), bias=False, device=weight.device, dtype=weight.dtype)
        self.type_matrix.weight = nn.Parameter(weight.detach().clone(), requires_grad=trainable)
        self.config.set_labels(labels)

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> MarkerTemplateEncoder:
        """The encoder that turns (text, character span) into this model's marked input."""
        return MarkerTemplateEncoder(tokenizer, self.config)

    def type_embeddings(self) -> torch.Tensor:
        """Type vectors `(num_types, hidden)` such that `logits = embed_mentions(...) @ type_embeddings().T`."""
        if self.config.scoring == "cosine":
            return self.config.cosine_scale * F.normalize(self.type_matrix.weight, dim=-1)
        return self.type_matrix.weight

    # -------------------------------------------------------------------------------------------------------- forward
    def mention_vectors(
        self, sequence_output: torch.Tensor, mention_positions: torch.Tensor, input_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The left marker's final hidden state (unit length under cosine scoring)."""
        vectors = gather_positions(sequence_output, mention_positions)
        return F.normalize(vectors, dim=-1) if self.config.scoring == "cosine" else vectors

    def default_mention_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The first `[ENT]` marker of each row (the left one)."""
        if self.config.ent_token_id is None:
            raise ValueError("Pass `mention_positions`: the config does not record the `[ENT]` marker id.")
        return first_token_positions(input_ids, self.config.ent_token_id, "[ENT] marker")

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        label_weights: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> EntityTypingOutput:
        r"""
        mention_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Index of the left `[ENT]` marker; defaults to the first marker of each row.
        labels (`torch.Tensor` of shape `(batch_size, num_types)`, *optional*):
            Multi-hot targets for the BCE term (logits + `BCEWithLogitsLoss`, safer than the code's clamped
            probabilities; mean over types and batch).
        label_weights (`torch.Tensor` of shape `(batch_size, num_types)`, *optional*):
            Per-example, per-label BCE weights.
        """
        encoder_outputs, _, mention_embeddings = self.encode_mentions(
            input_ids,
            attention_mask,
            token_type_ids,
            mention_positions,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            **kwargs,
        )
        logits = calibrated_scores(mention_embeddings, self.type_embeddings(), self.config)
        type_loss = multilabel_bce(logits, labels, label_weights) if labels is not None else None
        return EntityTypingOutput(
            loss=type_loss,
            logits=logits,
            type_loss=type_loss,
            mention_embeddings=mention_embeddings,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )

    # --------------------------------------------------------------------------------------------------- construction
    @classmethod
    def config_fields_for(cls, labels):
        """One type row per label: the type matrix is built with the config."""
        return {"id2label": dict(enumerate(_label_list(labels))), "label2id": None}  # the config derives label2id

    @classmethod
    def untyped_labels(cls, labels):
        """The placeholder row: `set_label_set` then draws every new row from its `generator`, so a pretrained and
        a plain start are compared on equal terms."""
        return [UNTYPED_LABEL]

    def start_from_encoder(self, name_or_path, loading_info, tokenizer, labels) -> None:
        """The tokenizer gains `[ENT]`; its embedding row is initialised by `ent_embedding_init` (explicitly:
        `resize_token_embeddings` defaults have changed across transformers versions). The type matrix starts from
        N(0, `initializer_range`)."""
        self.add_marker(tokenizer)

    @torch.no_grad()
    def add_marker(self, tokenizer: PreTrainedTokenizerBase) -> int:
        """Add `config.ent_token` to `tokenizer` as a special token and give it an embedding row; returns its id."""
        added = tokenizer.add_special_tokens({"additional_special_tokens": [self.config.ent_token]})
        ent_id = tokenizer.convert_tokens_to_ids(self.config.ent_token)
        pretrained_rows = min(self.get_input_embeddings().weight.size(0), ent_id)
        if ent_id >= self.get_input_embeddings().weight.size(0):
            self.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        if added:  # a new row (or a spare one the checkpoint never trained): initialise it, never leave it to chance
            weight = self.get_input_embeddings().weight
            if self.config.ent_embedding_init == "mean":
                weight[ent_id] = weight[:pretrained_rows].mean(dim=0)
            else:
                weight[ent_id].normal_(mean=0.0, std=self.config.initializer_range)
        self.config.ent_token_id = ent_id
        return ent_id

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if module is getattr(self, "type_matrix", None):
            init.normal_(module.weight, mean=0.0, std=self.config.initializer_range)


__all__ = ["UNTYPED_LABEL", "MBertForContrastiveTyping"]
