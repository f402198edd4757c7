"""FiveFine's `BertForPhraseTypeTyping` (Dai & Zeng, "From Ultra-Fine to Fine", ACL 2023; code: hldai/fivefine).

A BERT masked LM reads `left [ mention ] (Type: [MASK]) right`; a mention is scored against each type, a phrase, by
one dot product. Where both vectors come from is the model's type space, a part picked once from `config.type_space`
(`type_space.TypeSpace`): the paper's MLM space (`mlm_space`) or the encoder's own (`sentence_space`). Choices
between paper and code follow the code, so that the released checkpoint converts by renaming keys (dropping the
reference's `mlm.` prefix); each is noted where it is made.
"""

from collections.abc import Mapping
from types import MappingProxyType

import torch
from transformers import PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertModel, BertOnlyMLMHead
from transformers.utils import logging

from ..calibration import calibrated_scores
from ..configuration import FiveFineConfig
from ..label_examples import label_examples_unsupported, parse_label_examples
from ..label_sets import LabelSet, pad_phrase_token_ids
from ..layers import first_token_positions
from ..losses import multilabel_bce
from ..modeling_outputs import EntityTypingOutput
from ..modeling_utils import EntityTypingPreTrainedModel
from .auxiliary_losses import masked_lm_loss, neighbor_word_loss
from .example_mixing import ExampleVectors, mean_example_directions
from .mlm_space import MlmTypeSpace, TypePhraseEncoder
from .phrase_types import PhraseTypes
from .prompt_template import PromptTemplateEncoder
from .sentence_space import EncoderTypeSpace
from .type_space import TypeSpace


logger = logging.get_logger(__name__)

TYPE_SPACES: Mapping[str, type[TypeSpace]] = MappingProxyType({"mlm": MlmTypeSpace, "encoder": EncoderTypeSpace})


def _type_space_member(name: str) -> property:
    """A model member that is its type space's (read-only)."""
    return property(lambda model: getattr(model.type_space, name), doc=f"The type space's `{name}`.")


class BertForPhraseTypeTyping(EntityTypingPreTrainedModel):
    r"""
    FiveFine entity typer: types are phrases, so the label set can change at call time without retraining.

    The label set lives in the config (`id2label`, `label_phrases`, `label_phrase_token_ids`); change it with
    [`~BertForPhraseTypeTyping.set_label_set`], or pass `label_set_inputs(labels, tokenizer)` to `forward` for a
    one-off set. In eval mode with gradients off, type matrices are cached (`phrase_types`: dropped whenever a
    weight they depend on changes; after writing weights through `.data`, call `clear_type_cache()`). Under
    `type_space="encoder"`, a few examples per label move its type vector towards its mentions, with no training.

    ```python
    >>> model, tokenizer = BertForPhraseTypeTyping.from_encoder("bert-base-cased", ["person", "city", "company"])
    >>> encoded = model.get_mention_encoder(tokenizer).encode("Paris is big.", 0, 5)
    >>> logits = model(torch.tensor([encoded.input_ids])).logits  # (1, 3)
    ```
    """

    config: FiveFineConfig
    supports_candidate_labels = True  # types are phrases: any label set scores without training
    supports_type_subsets = True
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: FiveFineConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        space = TYPE_SPACES[config.type_space](config)
        self._type_space_attribute = space.attribute  # its weights keep the reference's names in checkpoints
        self.add_module(space.attribute, space)
        # The paper's "new MLM classification head": untied, initialised from the MLM head by `from_encoder`.
        self.nwp_head = BertOnlyMLMHead(config) if config.nwp_loss_weight > 0 else None
        self.phrase_types = PhraseTypes()  # type vectors, cached in eval mode
        self._load_label_set_buffers()
        self.post_init()

    @property
    def type_space(self) -> TypeSpace:
        """Where mentions and type phrases become vectors of one space (chosen by `config.type_space`)."""
        return self._modules[self._type_space_attribute]

    # What depends on the type space is the type space's.
    head_parameter_prefixes = _type_space_member("head_parameter_prefixes")
    auxiliary_parameter_prefixes = _type_space_member("auxiliary_parameter_prefixes")
    supports_label_examples = _type_space_member("supports_label_examples")
    encodes_types_with_encoder = _type_space_member("encodes_types_with_encoder")  # then big label sets want a bank

    def check_training_terms(self, weights: Mapping[str, float]) -> None:
        """Refuse auxiliary loss terms (`{"mlm": weight, ...}`) this type space cannot train with."""
        self.type_space.check_training_terms(weights)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, TypeSpace):
            module.initialize()
        elif isinstance(module, BertForPhraseTypeTyping):
            # `from_pretrained` builds on the meta device: non-persistent buffers must be filled here. Example
            # vectors missing from a checkpoint (reported by the load) are zero: a zero mean leaves the phrase alone.
            for name, (tensor, _) in PhraseTypes.buffers(module.config).items():
                if tensor is not None:
                    init.copy_(getattr(module, name), tensor)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    # ------------------------------------------------------------------------------------------------------ label set
    def _load_label_set_buffers(self, example_vectors: torch.Tensor | None = None) -> None:
        for name, (tensor, persistent) in PhraseTypes.buffers(
            self.config, self.bert.embeddings.word_embeddings.weight, example_vectors
        ).items():
            self.register_buffer(name, tensor, persistent=persistent)
        self.clear_type_cache()

    @property
    def label_set(self) -> LabelSet | None:
        """The configured label set, or `None` before one is set."""
        if not self.config.label_phrase_token_ids:
            return None
        return LabelSet.create(self.config.label_list(), self.config.label_phrases)

    def set_label_set(self, labels, tokenizer, label_phrases=None, *, examples=None, generator=None) -> LabelSet:
        """Examples (encoder type space only) are read by the weights of the time and only each label's mean
        example vector is kept (buffer `label_example_vectors`): after training, give them again. A call without
        `examples` drops stored ones."""
        label_set = LabelSet.create(labels, label_phrases)
        example_labels, example_vectors = None, None
        if examples is not None:
            if not self.supports_label_examples:
                raise label_examples_unsupported(self)
            parsed = parse_label_examples(examples, label_set.labels, tokenizer)
            example_labels, example_vectors = list(parsed.labels), mean_example_directions(self, tokenizer, parsed)
        self.config.set_label_phrases(label_set.labels, label_set.phrases, label_set.tokenize(tokenizer))
        if self.config.mask_token_id is None:
            self.config.mask_token_id = tokenizer.mask_token_id
        self.type_space.adopt_template(self.config, PromptTemplateEncoder(tokenizer, self.config))
        self.config.label_example_labels = example_labels
        self._load_label_set_buffers(example_vectors)
        return label_set

    def label_set_inputs(self, labels, tokenizer) -> dict[str, torch.Tensor]:
        label_set = labels if isinstance(labels, LabelSet) else LabelSet.create(labels)
        ids, mask = pad_phrase_token_ids(label_set.tokenize(tokenizer), tokenizer.pad_token_id)
        return {"type_phrase_ids": ids.to(self.device), "type_phrase_mask": mask.to(self.device)}

    def type_subset_inputs(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"type_phrase_ids": self.type_phrase_ids[rows], "type_phrase_mask": self.type_phrase_mask[rows]}

    def label_example_inputs(self, examples, tokenizer, labels=None) -> dict[str, torch.Tensor]:
        """In eval mode without gradients the example vectors are cached with the type matrices."""
        return self.phrase_types.example_inputs(self, examples, tokenizer, labels)

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> PromptTemplateEncoder:
        encoder = PromptTemplateEncoder(tokenizer, self.config)
        self.type_space.adopt_template(self.config, encoder)
        return encoder

    # --------------------------------------------------------------------------------------------------- type vectors
    def encode_types(self, type_phrase_ids: torch.Tensor, type_phrase_mask: torch.Tensor) -> torch.Tensor:
        """Type vectors of padded phrase word pieces, read by the type space (no cache, no examples)."""
        return self.type_space.encode_types(self, type_phrase_ids, type_phrase_mask.bool())

    def type_embeddings(
        self,
        type_phrase_ids: torch.Tensor | None = None,
        type_phrase_mask: torch.Tensor | None = None,
        type_example_rows: torch.Tensor | None = None,
        type_example_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Type vectors of the given phrases, or of the configured label set with its stored examples, with the given
        examples mixed in; cached in eval mode without gradients."""
        given = ExampleVectors.given(type_example_rows, type_example_vectors)
        return self.phrase_types.vectors(self, type_phrase_ids, type_phrase_mask, given)

    def clear_type_cache(self) -> None:
        """Drop cached type matrices (they are also invalidated automatically when weights change)."""
        self.phrase_types.cache.clear()

    def train(self, mode: bool = True):
        """Switching mode drops the type cache: a training phase may change the weights in any way."""
        self.clear_type_cache()
        return super().train(mode)

    # -------------------------------------------------------------------------------------------------------- forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        label_weights: torch.Tensor | None = None,
        mlm_labels: torch.Tensor | None = None,
        nwp_input_ids: torch.Tensor | None = None,
        nwp_attention_mask: torch.Tensor | None = None,
        nwp_mention_positions: torch.Tensor | None = None,
        nwp_labels: torch.Tensor | None = None,
        type_phrase_ids: torch.Tensor | None = None,
        type_phrase_mask: torch.Tensor | None = None,
        type_bank: torch.Tensor | None = None,
        type_bank_rows: torch.Tensor | None = None,
        type_bank_row_scale: torch.Tensor | None = None,
        type_example_rows: torch.Tensor | None = None,
        type_example_vectors: torch.Tensor | None = None,
        **kwargs,
    ) -> EntityTypingOutput:
        r"""
        mention_positions (`(batch_size,)`, *optional*): the typing `[MASK]`; by default the first mask token.
        labels, label_weights (`(batch_size, num_types)`, *optional*): multi-hot targets and per-label BCE weights.
        mlm_labels (`(batch_size, sequence_length)`, *optional*): MLM targets on the corrupted `input_ids`, -100
            elsewhere. The typing slot is never a target.
        nwp_input_ids, nwp_attention_mask, nwp_mention_positions, nwp_labels (*optional*): neighbor-word prediction
            inputs (`neighbor_words`); the term is added to the loss of the step whose batch carries them (the
            reference runs it as its own optimizer step every 10 steps, which the script's schedule reproduces).
        type_phrase_ids, type_phrase_mask (`(num_types, max_phrase_length)`, *optional*): a label set for this call
            instead of the configured one (`label_set_inputs`, `type_subset_inputs`).
        type_bank, type_bank_rows, type_bank_row_scale (*optional*): precomputed vectors of the configured label set
            `(num_types, dim)` scored instead of encoding it (`training.TypeBank`); the rows `(k,)` are replaced by
            `type_phrase_ids` encoded now, whose gradient (not value) is multiplied by the row scale `(k,)`.
        type_example_rows, type_example_vectors (`(k,)`, `(k, hidden)`, *optional*): label examples for this call
            (`label_example_inputs`), mixed into those rows' type vectors.
        output_hidden_states, output_attentions (`bool`, *optional*): the encoder's, as in `BertModel`.
        """
        encoded = self.encode_mentions(input_ids, attention_mask, token_type_ids, mention_positions, **kwargs)
        encoder_outputs, mention_positions, mention_embeddings = encoded
        if type_bank is None:
            type_vectors = self.type_embeddings(
                type_phrase_ids, type_phrase_mask, type_example_rows, type_example_vectors
            )
        else:
            phrases = (type_phrase_ids, type_phrase_mask, type_example_rows)
            type_vectors = self.phrase_types.with_bank(self, type_bank, type_bank_rows, type_bank_row_scale, *phrases)
        logits = calibrated_scores(mention_embeddings, type_vectors, self.config)

        type_loss = multilabel_bce(logits, labels, label_weights) if labels is not None else None
        mlm_loss = nwp_loss = None
        if mlm_labels is not None and self.config.mlm_loss_weight > 0:
            mlm_loss = masked_lm_loss(self.cls, encoder_outputs.last_hidden_state, mlm_labels, mention_positions)
        if nwp_input_ids is not None and self.nwp_head is not None:
            if nwp_mention_positions is None:
                nwp_mention_positions = self.default_mention_positions(nwp_input_ids)
            nwp_loss = neighbor_word_loss(
                self.bert, self.nwp_head, nwp_input_ids, nwp_attention_mask, nwp_mention_positions, nwp_labels
            )
        weighted = [(type_loss, 1.0), (mlm_loss, self.config.mlm_loss_weight), (nwp_loss, self.config.nwp_loss_weight)]
        present = [term * weight for term, weight in weighted if term is not None]
        return EntityTypingOutput(
            loss=torch.stack(present).sum() if present else None,
            logits=logits,
            type_loss=type_loss,
            mlm_loss=mlm_loss,
            nwp_loss=nwp_loss,
            mention_embeddings=mention_embeddings,
            hidden_states=encoder_outputs.hidden_states,
            attentions=encoder_outputs.attentions,
        )

    def mention_vectors(self, sequence_output, mention_positions, input_ids) -> torch.Tensor:
        return self.type_space.mention_vectors(self, sequence_output, mention_positions, input_ids)

    def default_mention_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The first mask token of each row: the typing slot (only right before MLM corruption adds others)."""
        if self.config.mask_token_id is None:
            raise ValueError("Pass `mention_positions`: the config does not record the tokenizer's `mask_token_id`.")
        return first_token_positions(input_ids, self.config.mask_token_id, "mask")

    # --------------------------------------------------------------------------------------------------- construction
    def start_from_encoder(self, name_or_path, loading_info: dict, tokenizer, labels) -> None:
        """The encoder, and the MLM head when the checkpoint has one, loaded by key; a checkpoint without an MLM
        head (a sentence-embedding BERT) gets a fresh one, which is reported. The NWP head starts as a copy of the
        MLM head (reference)."""
        if any(key.startswith("cls.predictions.transform") for key in loading_info["missing_keys"]):
            logger.log(*self.type_space.describe_missing_mlm_head(str(name_or_path)))
        if self.nwp_head is not None:
            self.nwp_head.load_state_dict(self.cls.state_dict())
        self.get_mention_encoder(tokenizer)  # fails early if the template does not fit this tokenizer
        self.set_label_set(labels, tokenizer)


__all__ = ["TYPE_SPACES", "BertForPhraseTypeTyping", "TypePhraseEncoder"]
