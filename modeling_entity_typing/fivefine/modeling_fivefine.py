"""FiveFine's `BertForPhraseTypeTyping` (Dai & Zeng, "From Ultra-Fine to Fine", ACL 2023; code: hldai/fivefine).

A BERT masked LM reads `left [ mention ] (Type: [MASK]) right`. The mention vector is the MLM head's transform output
at `[MASK]`; each type is a phrase whose word pieces are embedded with the (tied) MLM output weights and pooled by
multi-head attention; the score is their dot product. Choices between paper and code follow the code, so that the
released checkpoint converts by renaming keys (dropping the reference's `mlm.` prefix); each is noted where it is made.
"""

import math
import threading
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from os import PathLike
from types import MappingProxyType

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertModel, BertOnlyMLMHead
from transformers.utils import logging

from ..calibration import calibrated_scores
from ..configuration import FiveFineConfig
from ..configuration.configuration_fivefine import label_phrase_checksum
from ..contract import EncoderAndTokenizer
from ..label_examples import LabelExamples, label_examples_unsupported, parse_label_examples
from ..label_sets import LabelSet, pad_phrase_token_ids
from ..layers import first_token_positions, gather_positions
from ..losses import multilabel_bce, token_cross_entropy
from ..modeling_outputs import EntityTypingOutput
from ..modeling_utils import (
    EntityTypingPreTrainedModel,
    check_save_directory,
    encoder_config_fields,
    load_encoder_weights,
    save_new_model,
)
from .example_mixing import (
    ExampleVectors,
    content_key,
    mean_example_directions,
    merge_examples,
    mix_examples,
    rows_of,
)
from .prompt_template import PromptTemplateEncoder
from .sentence_space import CosineTypeScorer, masked_mean, mention_span_mask


logger = logging.get_logger(__name__)

_TYPE_CACHE_SIZE = 4  # label sets whose encoded type matrix is kept in eval mode
_TYPE_CHUNK_SIZE = 1024  # types encoded at once when filling the cache
# Guards every model's type cache (lookup, insert, eviction, clearing). Module-level, so models still deepcopy and
# pickle; the sections it guards are dict operations, the encoding itself runs outside it.
_TYPE_CACHE_LOCK = threading.RLock()


class TypePhraseEncoder(nn.Module):
    """Pools a phrase's token embeddings into one type vector (reference `MultiHeadAttentionDirect`).

    One learned query shared by all types plus a zero-initialised per-head offset `u`; keys and values are linear
    maps of the token embeddings; heads are concatenated, projected by `output`, doubled (the reference's `'an'`
    post-process adds the output to itself) and layer-normalised. The paper's Eq. 2 has no output projection and no
    LayerNorm; the code's form is kept so the released weights load.

    `encode_phrases` (what `encode_types` uses) computes `forward` without its per-position projections, which cost
    as much as the encoder when training on UFET's 10,331 types: keys and values depend only on the word piece, so
    each distinct piece (5.6k there) is projected once and gathered back per position; the key enters only through
    `k_h . q_h = e . (W_k,h^T q_h) + b_k,h . q_h`, so the query is folded into the key weight (one score per piece and
    head); padding, whose weight is exactly 0, is skipped in the weighted sum. Each step is an exact rewrite, and the
    mask, softmax and dropout act on the same `(types, heads, len)` tensor, so values and all gradients equal
    `forward`'s up to float rounding (seeded dropout included).
    """

    def __init__(self, config: FiveFineConfig):
        super().__init__()
        hidden_size, self.num_heads = config.hidden_size, config.type_attention_heads
        self.head_size = hidden_size // self.num_heads
        self.query = nn.Parameter(torch.empty(1, hidden_size))
        self.head_offset = nn.Parameter(torch.zeros(self.num_heads, self.head_size))
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(config.type_attention_dropout)
        self.layer_norm = nn.LayerNorm(hidden_size)  # eps 1e-5 as in the reference (torch default)

    def _head_queries(self) -> torch.Tensor:
        return self.query.view(self.num_heads, self.head_size) + self.head_offset  # (heads, head_size)

    def _attention_weights(self, scores: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """`(types, heads, len)` scores -> masked softmax weights, with attention dropout."""
        scores = scores.masked_fill(~token_mask[:, None, :], torch.finfo(scores.dtype).min)
        return self.dropout(scores.softmax(dim=-1))

    def _project(self, pooled: torch.Tensor) -> torch.Tensor:
        """`(types, heads, head_size)` pooled values -> `(types, hidden)` type vectors."""
        return self.layer_norm(2 * self.output(pooled.flatten(1)))

    def forward(self, token_embeddings: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """`(num_types, max_len, hidden)` embeddings and `(num_types, max_len)` mask -> `(num_types, hidden)`."""
        num_types, length, _ = token_embeddings.shape
        keys = self.key(token_embeddings).view(num_types, length, self.num_heads, self.head_size)
        values = self.value(token_embeddings).view(num_types, length, self.num_heads, self.head_size)
        scores = torch.einsum("tlhd,hd->thl", keys, self._head_queries()) / math.sqrt(self.head_size)
        weights = self._attention_weights(scores, token_mask)
        return self._project(torch.einsum("thl,tlhd->thd", weights, values))

    def encode_phrases(
        self, embedding_matrix: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor
    ) -> torch.Tensor:
        """`forward(embedding_matrix[token_ids], token_mask)`, projecting each distinct word piece once."""
        num_types, length = token_ids.shape
        # A masked position of a row with an unmasked one scores finfo.min, whose softmax weight underflows to exactly
        # 0 (and stays 0 through dropout), so it adds nothing to the pooled value or to any gradient: it is dropped.
        # A row with no unmasked token keeps all its positions, as `forward` spreads uniform weight over them.
        kept = token_mask | ~token_mask.any(dim=1, keepdim=True)
        type_index, position_index = kept.nonzero(as_tuple=True)  # (positions,)
        pieces, inverse = torch.unique(token_ids[type_index, position_index], return_inverse=True)
        piece_embeddings = embedding_matrix[pieces]  # (pieces, hidden)
        query = self._head_queries()
        key_weight = self.key.weight.view(self.num_heads, self.head_size, -1)  # rows of head h: W_k,h
        folded_weight = torch.einsum("hdi,hd->ih", key_weight, query)  # (hidden, heads): W_k,h^T q_h
        folded_bias = (self.key.bias.view(self.num_heads, self.head_size) * query).sum(-1)  # (heads,): b_k,h . q_h
        piece_scores = (piece_embeddings @ folded_weight + folded_bias) / math.sqrt(self.head_size)
        piece_values = self.value(piece_embeddings).view(-1, self.num_heads, self.head_size)
        # Softmax and dropout run on the same dense (types, heads, len) tensor as in `forward`, so a seeded dropout
        # draws the same mask; dropped positions get any score, since the mask overwrites it.
        scores = piece_scores.new_zeros(num_types, length, self.num_heads)
        scores = scores.index_put((type_index, position_index), piece_scores[inverse]).transpose(1, 2)
        weights = self._attention_weights(scores, token_mask)[type_index, :, position_index]  # (positions, heads)
        # The gathers' backward sums the gradients of every position of a piece into its row, as the gradient of
        # `embedding_matrix[token_ids]` sums them into the embedding row under `forward`.
        contributions = weights[..., None] * piece_values[inverse]  # (positions, heads, head_size)
        pooled = contributions.new_zeros(num_types, self.num_heads, self.head_size)
        return self._project(pooled.index_add(0, type_index, contributions))


def _report_loading(name_or_path, loading_info: dict, type_space: str) -> None:
    """Log which parts of a FiveFine model came from an encoder checkpoint and which start fresh."""
    missing = set(loading_info["missing_keys"])
    missing_encoder = sorted(key for key in missing if key.startswith("bert."))
    if missing_encoder:
        logger.warning(
            f"{name_or_path} lacks {len(missing_encoder)} encoder weights, initialised randomly: {missing_encoder}"
        )
    no_mlm_head = any(key.startswith("cls.predictions.transform") for key in missing)
    if no_mlm_head and type_space == "encoder":
        logger.info(f"{name_or_path} has no MLM head; `type_space='encoder'` types without one.")
    elif no_mlm_head:
        logger.warning(
            f"{name_or_path} has no MLM head: the head (whose transform gives FiveFine's mention vector) starts "
            "from random weights and needs training."
        )
    new_modules = ("type_encoder.", "type_scorer.", "nwp_head.")
    fresh = sorted({key.split(".")[0] for key in missing if key.startswith(new_modules)})
    logger.info(
        f"Loaded the encoder from {name_or_path}; new modules: {fresh}; ignored: {loading_info['unexpected_keys']}"
    )


class BertForPhraseTypeTyping(EntityTypingPreTrainedModel):
    r"""
    FiveFine entity typer: types are phrases, so the label set can change at call time without retraining.

    The label set lives in the config (`id2label`, `label_phrases`, `label_phrase_token_ids`); change it with
    [`~BertForPhraseTypeTyping.set_label_set`], or pass `type_phrase_ids` to `forward` for a one-off set. In eval mode
    with gradients off, the encoded type matrix is cached per label set. The cache is dropped whenever the label set
    changes, the model switches mode (`train()`/`eval()`), or a gradient reaches a weight that feeds the type vectors
    (so any optimizer step, fused or not, invalidates it); in-place writes that bump a parameter's version counter
    (`load_state_dict`, `copy_` under `no_grad`) change its key. Writing through `.data` does neither: call
    `clear_type_cache()` after doing that.

    Under `type_space="encoder"`, a few examples per label move its type vector towards its mentions, with no
    training (`set_label_set(..., examples=...)`, or `label_example_inputs` for one call; see `example_mixing`).

    ```python
    >>> model, tokenizer = BertForPhraseTypeTyping.from_encoder("bert-base-cased", ["person", "city", "company"])
    >>> encoded = model.get_mention_encoder(tokenizer).encode("Paris is big.", 0, 5)
    >>> logits = model(torch.tensor([encoded.input_ids])).logits  # (1, 3)
    ```
    """

    config: FiveFineConfig
    head_parameter_prefixes = ("type_encoder.",)  # `("type_scorer.",)` under `type_space="encoder"`
    # The MLM output bias trains only under the MLM term (the decoder weight is the tied word embedding).
    _AUXILIARY_PREFIXES = MappingProxyType(
        {"mlm": ("cls.predictions.bias", "cls.predictions.decoder.bias"), "nwp": ("nwp_head.",)}
    )
    # In the encoder type space typing reads the encoder's mean, not the MLM head's transform, so only the MLM term
    # trains it; left trainable, DDP stops at the first step (a parameter without gradient) when MLM is off.
    _ENCODER_SPACE_AUXILIARY_PREFIXES = MappingProxyType(
        {**_AUXILIARY_PREFIXES, "mlm": (*_AUXILIARY_PREFIXES["mlm"], "cls.predictions.transform.")}
    )
    supports_candidate_labels = True  # types are phrases: any label set scores without training
    _tied_weights_keys = {
        "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
        "cls.predictions.decoder.bias": "cls.predictions.bias",
    }

    def __init__(self, config: FiveFineConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(config)
        # `type_space="mlm"` (the paper) pools phrases with attention; `"encoder"` encodes them with the encoder.
        encoder_space = config.type_space == "encoder"
        self.type_encoder = None if encoder_space else TypePhraseEncoder(config)
        self.type_scorer = CosineTypeScorer() if encoder_space else None
        if encoder_space:
            self.head_parameter_prefixes = ("type_scorer.",)
        # The paper's "new MLM classification head": untied, initialised from the MLM head by `from_encoder`.
        self.nwp_head = BertOnlyMLMHead(config) if config.nwp_loss_weight > 0 else None
        self._type_cache: OrderedDict = OrderedDict()
        self._type_cache_generation = 0  # bumped by every clear, so a matrix computed across one is not stored
        self._watched_type_weights: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> parameter
        self._label_set_version = 0
        self._load_label_set_buffers()
        self.post_init()

    @property
    def supports_label_examples(self) -> bool:
        """Label examples mix into type vectors in the encoder type space only, where mentions and phrases are
        vectors of one space (`example_mixing`)."""
        return self.config.type_space == "encoder"

    @property
    def auxiliary_parameter_prefixes(self) -> Mapping[str, tuple[str, ...]]:
        """Per auxiliary loss term, the parameters only it trains (read-only). A class constant per type space, not
        an instance attribute: a mapping proxy does not pickle, and models must deep-copy and pickle."""
        if self.config.type_space == "encoder":
            return self._ENCODER_SPACE_AUXILIARY_PREFIXES
        return self._AUXILIARY_PREFIXES

    def __getstate__(self) -> dict:
        """Copies and pickles start with an empty type cache: cached matrices and the watched-weight registry (weak
        references, which do not pickle) belong to this instance's parameters; a copy watches its own."""
        state = super().__getstate__()
        state["_type_cache"] = OrderedDict()
        del state["_watched_type_weights"]
        return state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._watched_type_weights = weakref.WeakValueDictionary()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, TypePhraseEncoder):
            # A fresh pool starts as the mean of the phrase's word embeddings, layer-normalised: zero keys give
            # uniform attention, the value map is the identity and the output map halves what the reference's
            # post-process doubles. The reference initialises these maps randomly, which hides the type word from
            # the score until training recovers it; starting from the word keeps FiveFine's prior (types are words
            # predicted at the mask) from the first step. Keys still learn: their gradient is query x embedding.
            init.normal_(module.query, mean=0.0, std=0.1)  # reference: randn * 0.1
            init.zeros_(module.head_offset)
            init.zeros_(module.key.weight)
            init.zeros_(module.key.bias)
            init.copy_(module.value.weight, torch.eye(module.value.weight.size(0)))
            init.zeros_(module.value.bias)
            init.copy_(module.output.weight, torch.eye(module.output.weight.size(0)) / 2)
            init.zeros_(module.output.bias)
            # Gain 1/sqrt(hidden): a mention vector and a type vector are both layer-normalised (norm ~sqrt(hidden)),
            # so with gain 1 the first logits are in the hundreds and most of 10k UFET types start "positive"; the
            # sigmoid saturates and BCE spends its first steps crushing every score, prior included. Scaled like
            # attention's q.k / sqrt(d), scores start near unit size; the ranking of types is unchanged.
            init.constant_(module.layer_norm.weight, 1 / math.sqrt(module.layer_norm.weight.size(0)))
            init.zeros_(module.layer_norm.bias)
        elif isinstance(module, CosineTypeScorer):
            init.constant_(module.log_scale, math.log(module.initial_scale))
            init.constant_(module.bias, module.initial_bias)
        elif isinstance(module, BertForPhraseTypeTyping):
            # `from_pretrained` builds on the meta device: non-persistent buffers must be filled here.
            ids, mask = module._label_set_tensors()
            init.copy_(module.type_phrase_ids, ids)
            init.copy_(module.type_phrase_mask, mask)
            if module.label_example_vectors is not None:
                # Only when missing from a checkpoint (reported by the load): a zero mean leaves the phrase alone.
                init.zeros_(module.label_example_vectors)

    def get_output_embeddings(self):
        return self.cls.predictions.decoder

    def set_output_embeddings(self, new_embeddings):
        self.cls.predictions.decoder = new_embeddings
        self.cls.predictions.bias = new_embeddings.bias

    # ----------------------------------------------------------------------------------------------------- label set
    def _label_set_tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        token_ids = self.config.label_phrase_token_ids
        if token_ids:
            return pad_phrase_token_ids(token_ids, self.config.pad_token_id or 0)
        return torch.zeros(0, 1, dtype=torch.long), torch.zeros(0, 1, dtype=torch.bool)

    def _load_label_set_buffers(self, example_vectors: torch.Tensor | None = None) -> None:
        ids, mask = self._label_set_tensors()
        weight = self.bert.embeddings.word_embeddings.weight
        # Not persistent: the config holds the label set, so checkpoints of different label sets share one layout.
        self.register_buffer("type_phrase_ids", ids.to(weight.device), persistent=False)
        self.register_buffer("type_phrase_mask", mask.to(weight.device), persistent=False)
        # Persistent, since they cannot be recomputed from the config: the mean example vector of each label of
        # `config.label_example_labels`, in that order. `None` (no key in a checkpoint) without examples.
        example_labels = self.config.label_example_labels
        if example_labels and example_vectors is None:
            example_vectors = torch.zeros(len(example_labels), self.config.hidden_size)  # filled by loading
        if example_vectors is not None:
            example_vectors = example_vectors.to(weight.device, weight.dtype)
        self.register_buffer("label_example_vectors", example_vectors)
        self._label_set_version += 1

    @property
    def label_set(self) -> LabelSet | None:
        """The configured label set, or `None` before one is set."""
        if not self.config.label_phrase_token_ids:
            return None
        labels = [self.config.id2label[index] for index in range(self.config.num_labels)]
        return LabelSet.create(labels, self.config.label_phrases)

    def set_label_set(
        self,
        labels: Sequence[str] | Mapping[str, str],
        tokenizer: PreTrainedTokenizerBase,
        label_phrases: Sequence[str] | Mapping[str, str] | None = None,
        *,
        examples: Mapping[str, Sequence] | None = None,
    ) -> LabelSet:
        """Make `labels` the model's label set, without touching any weight.

        `labels` is a list (phrases by FiveFine's default rule, or `label_phrases`) or a `{label: phrase}` dict.
        Updates `config.id2label`/`label2id`/`label_phrases`/`label_phrase_token_ids`, so `save_pretrained` keeps it.

        `examples` (`type_space="encoder"` only): `{label: [example, ...]}`, an example being `{"text": ...,
        "span": (start, end) or "mention"}` or `(text, start, end)`; each such label's type vector mixes its phrase
        with its examples (`config.label_example_weight`), the others keep their phrase. Only each label's mean
        example vector is stored (buffer `label_example_vectors`, saved with the model): it was read by the weights
        at the time the examples were given, so after changing the weights (training), give the examples again.
        A call without `examples` drops stored ones.
        """
        label_set = LabelSet.create(labels, label_phrases)
        token_ids = label_set.tokenize(tokenizer)
        example_labels, example_vectors = None, None
        if examples is not None:
            if not self.supports_label_examples:
                raise label_examples_unsupported(self)
            parsed = parse_label_examples(examples, label_set.labels, tokenizer)
            example_labels, example_vectors = list(parsed.labels), mean_example_directions(self, tokenizer, parsed)
        self.config.set_labels(label_set.labels)
        self.config.label_phrases = list(label_set.phrases)
        self.config.label_phrase_token_ids = token_ids
        self.config.label_phrase_checksums = [
            label_phrase_checksum(phrase, ids) for phrase, ids in zip(label_set.phrases, token_ids)
        ]
        if self.config.mask_token_id is None:
            self.config.mask_token_id = tokenizer.mask_token_id
        if self.config.type_space == "encoder":
            self._record_template_ids(PromptTemplateEncoder(tokenizer, self.config))
        self.config.label_example_labels = example_labels
        self._load_label_set_buffers(example_vectors)
        return label_set

    def encode_label_set(
        self, labels: LabelSet | Sequence[str] | Mapping[str, str], tokenizer: PreTrainedTokenizerBase
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(type_phrase_ids, type_phrase_mask)` for `forward`, for scoring against a label set without adopting it."""
        label_set = labels if isinstance(labels, LabelSet) else LabelSet.create(labels)
        ids, mask = pad_phrase_token_ids(label_set.tokenize(tokenizer), tokenizer.pad_token_id)
        return ids.to(self.device), mask.to(self.device)

    def label_set_inputs(
        self, labels: LabelSet | Sequence[str] | Mapping[str, str], tokenizer: PreTrainedTokenizerBase
    ) -> dict[str, torch.Tensor]:
        """`forward` keyword arguments (`type_phrase_ids`, `type_phrase_mask`) that score against `labels`."""
        ids, mask = self.encode_label_set(labels, tokenizer)
        return {"type_phrase_ids": ids, "type_phrase_mask": mask}

    def label_example_inputs(
        self,
        examples: LabelExamples | Mapping[str, Sequence],
        tokenizer: PreTrainedTokenizerBase,
        labels: LabelSet | Sequence[str] | Mapping[str, str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """`forward` keyword arguments (`type_example_rows`, `type_example_vectors`) that add `examples` (as in
        `set_label_set`) to the label set scored: `labels` (pass `label_set_inputs(labels)` too; stored examples do
        not apply to it), or by default the configured set, whose stored examples they override label by label.

        The example vectors are read by the current weights; in eval mode without gradients they are kept in the
        type cache, so repeated calls encode the examples once.
        """
        if not self.supports_label_examples:
            raise label_examples_unsupported(self)
        if labels is None:
            label_list, where = self.config.label_list(), "the model's label set"
            hint = " (to type against other labels, pass them as `labels`, or the pipeline's `candidate_labels`)"
        else:
            label_set = labels if isinstance(labels, LabelSet) else LabelSet.create(labels)
            label_list, where, hint = list(label_set.labels), "the label set given", ""
        if isinstance(examples, LabelExamples):
            examples.check_labels(label_list, where, hint)
        else:
            examples = parse_label_examples(examples, label_list, tokenizer, where, hint)
        rows = rows_of(examples.labels, {label: row for row, label in enumerate(label_list)}, self.device)
        return {"type_example_rows": rows, "type_example_vectors": self._example_directions(examples, tokenizer)}

    def _example_directions(self, examples: LabelExamples, tokenizer: PreTrainedTokenizerBase) -> torch.Tensor:
        """`mean_example_directions` on the model's device, cached with the type matrices in eval mode."""
        if self.training or torch.is_grad_enabled():
            return mean_example_directions(self, tokenizer, examples).to(self.device)
        key = (("examples", examples), self._type_weights_key())
        cached = self._cached_type_matrix(key)
        if cached is not None:
            return cached
        generation = self._type_cache_generation
        self._watch_type_weights()
        return self._store_type_matrix(
            key, mean_example_directions(self, tokenizer, examples).to(self.device), generation
        )

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> PromptTemplateEncoder:
        """The encoder that turns (text, character span) into this model's templated input."""
        encoder = PromptTemplateEncoder(tokenizer, self.config)
        self._record_template_ids(encoder)
        return encoder

    def _record_template_ids(self, encoder: PromptTemplateEncoder) -> None:
        """Under `type_space="encoder"`: record (first time) or check the template ids `forward` needs to find the
        mention's pieces and to encode phrases, so a tokenizer other than the model's own fails here rather than
        pooling the wrong span."""
        if self.config.type_space == "encoder":
            fields = ("mention_open_ids", "pieces_before_slot", "phrase_boundary_ids")
            found = (
                list(encoder.open_ids),
                encoder.prompt_ids["type"].index(encoder.mask_id),
                [encoder.cls_id, encoder.sep_id],
            )
            recorded = tuple(getattr(self.config, name) for name in fields)
            if recorded == (None, None, None):
                for name, value in zip(fields, found):
                    setattr(self.config, name, value)
            elif recorded != found:
                raise ValueError(
                    f"This tokenizer gives the template ids {dict(zip(fields, found))}; the model was set up with "
                    f"{dict(zip(fields, recorded))}. Use the tokenizer saved with the model."
                )

    # ------------------------------------------------------------------------------------------------- type vectors
    def encode_types(self, type_phrase_ids: torch.Tensor, type_phrase_mask: torch.Tensor) -> torch.Tensor:
        """Type vectors: phrase tokens embedded with the tied MLM output weights, then pooled (`(num_types, hidden)`);
        under `type_space="encoder"`, the encoder's mean-pooled phrase (`(num_types, hidden + 1)`, see
        `sentence_space`)."""
        if self.type_scorer is not None:
            ids, mask = self._with_phrase_boundaries(type_phrase_ids, type_phrase_mask.bool())
            return self.type_scorer.type_side(self._mean_pooled_by_length(ids, mask))
        return self.type_encoder.encode_phrases(
            self.cls.predictions.decoder.weight, type_phrase_ids, type_phrase_mask.bool()
        )

    def _mean_pooled_by_length(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The encoder's mean output over each row's unmasked pieces, rows of equal length run together unpadded.

        Type phrases are short and uneven (UFET: 3.5 pieces with the boundaries, padded to 7), so padding to the
        longest would double the work; attention masks out padding anyway, so the vectors are the same up to float
        rounding (the masked softmax gives padded keys zero weight).
        """
        lengths = mask.sum(dim=1)
        if ids.size(0) == 0:
            return self.bert.embeddings.word_embeddings.weight.new_zeros(0, self.config.hidden_size)
        order, pooled = [], []
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().flatten()
            group = ids[rows, :length]
            hidden = self.bert(input_ids=group, attention_mask=torch.ones_like(group)).last_hidden_state
            order.append(rows)
            pooled.append(hidden.mean(dim=1))
        return torch.cat(pooled)[torch.cat(order).argsort()]

    def _with_phrase_boundaries(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`[cls] phrase [sep]` per row, as the tokenizer encodes a text: a lone word piece without them comes out of
        a sentence encoder nearly the same whatever the word (measured on MiniLM), so the boundaries are needed."""
        if self.config.phrase_boundary_ids is None:
            raise ValueError(
                "`type_space='encoder'` needs the template ids: call `model.get_mention_encoder(tokenizer)` once "
                "(from_encoder and the pipeline do) before scoring."
            )
        cls_id, sep_id = self.config.phrase_boundary_ids
        lengths, pad_id = mask.sum(dim=1), self.config.pad_token_id or 0
        wrapped = ids.new_full((ids.size(0), ids.size(1) + 2), pad_id)
        wrapped[:, 0] = cls_id
        wrapped[:, 1:-1] = ids.masked_fill(~mask, pad_id)
        wrapped[torch.arange(ids.size(0), device=ids.device), lengths + 1] = sep_id
        positions = torch.arange(wrapped.size(1), device=ids.device)
        return wrapped, positions[None, :] < (lengths + 2)[:, None]

    def _type_weights(self) -> list[nn.Parameter]:
        if self.type_scorer is not None:
            return list(self.bert.parameters())
        return [self.cls.predictions.decoder.weight, *self.type_encoder.parameters()]

    def _type_weights_key(self) -> tuple:
        return tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in self._type_weights())

    def _watch_type_weights(self) -> None:
        """Drop the cache whenever a gradient is accumulated into a weight that feeds the type vectors.

        Version counters alone are not enough: fused optimizers (AdamW(fused=True) in torch 2.x) update weights
        in place without bumping `_version`, which served stale type vectors to every dev evaluation. Any optimizer
        needs a gradient first, so the gradient hook catches all of them. A weak reference keeps the hook from
        holding the model alive.
        """
        model = weakref.ref(self)

        def invalidate(_parameter: torch.Tensor) -> None:
            owner = model()
            if owner is not None:
                owner.clear_type_cache()

        with _TYPE_CACHE_LOCK:
            for parameter in self._type_weights():
                if parameter.requires_grad and self._watched_type_weights.get(id(parameter)) is not parameter:
                    parameter.register_post_accumulate_grad_hook(invalidate)
                    self._watched_type_weights[id(parameter)] = parameter

    def train(self, mode: bool = True):
        """Switching mode drops the type cache: a training phase may change the weights in any way."""
        self.clear_type_cache()
        return super().train(mode)

    def _cached_type_matrix(self, key: tuple) -> torch.Tensor | None:
        """The cached matrix of `key` (marked most recently used), or `None`."""
        with _TYPE_CACHE_LOCK:
            cached = self._type_cache.get(key)
            if cached is not None:
                self._type_cache.move_to_end(key)
            return cached

    def _store_type_matrix(self, key: tuple, matrix: torch.Tensor, generation: int) -> torch.Tensor:
        """Cache `matrix` unless the cache was cleared since it was computed; a matrix another thread stored for the
        same key first is returned instead, so all callers share one. Least recently used entries are evicted."""
        with _TYPE_CACHE_LOCK:
            if generation != self._type_cache_generation:
                return matrix
            existing = self._type_cache.get(key)
            if existing is not None:
                self._type_cache.move_to_end(key)
                return existing
            self._type_cache[key] = matrix
            while len(self._type_cache) > _TYPE_CACHE_SIZE:
                self._type_cache.popitem(last=False)
            return matrix

    def type_embeddings(
        self,
        type_phrase_ids: torch.Tensor | None = None,
        type_phrase_mask: torch.Tensor | None = None,
        type_example_rows: torch.Tensor | None = None,
        type_example_vectors: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Type vectors of the given phrases, or of the configured label set (with its stored examples), with the
        given examples mixed in (`label_example_inputs`); cached in eval mode without grad."""
        given = ExampleVectors.given(type_example_rows, type_example_vectors)
        if given is not None and not self.supports_label_examples:
            raise label_examples_unsupported(self)
        if type_phrase_ids is None:
            if self.type_phrase_ids.size(0) == 0:
                if self.config.label_phrases:
                    raise ValueError(
                        "This model's config names label phrases but holds no `label_phrase_token_ids`: tokenize "
                        "them with `model.set_label_set(list(model.config.id2label.values()), tokenizer, "
                        "model.config.label_phrases)`."
                    )
                raise ValueError(
                    "This model has no label set yet: call `model.set_label_set(labels, tokenizer)` or pass "
                    "`type_phrase_ids` and `type_phrase_mask` (see `model.encode_label_set`)."
                )
            type_phrase_ids, type_phrase_mask = self.type_phrase_ids, self.type_phrase_mask
            stored = self.label_example_vectors
            stored_key = None if stored is None else (id(stored), stored._version)
            label_set_key = ("config", self._label_set_version, stored_key)
        else:
            if type_phrase_mask is None:
                type_phrase_mask = type_phrase_ids != (self.config.pad_token_id or 0)
            label_set_key = None
        configured = label_set_key is not None
        if self.training or torch.is_grad_enabled():
            return self._with_examples(self.encode_types(type_phrase_ids, type_phrase_mask), given, configured)
        if label_set_key is None:
            # A content key: equal label sets hit the cache whichever tensor object carries them.
            label_set_key = (
                "ids",
                hash(type_phrase_ids.cpu().numpy().tobytes()),
                tuple(type_phrase_ids.shape),
                hash(type_phrase_mask.cpu().numpy().tobytes()),
            )
        examples_key = (content_key(given), self.config.label_example_weight)
        key = (label_set_key, examples_key, self._type_weights_key())
        cached = self._cached_type_matrix(key)
        if cached is not None:
            return cached
        generation = self._type_cache_generation
        self._watch_type_weights()
        # In chunks: without a graph to keep, peak memory stays flat however large the label set.
        matrix = torch.cat(
            [
                self.encode_types(ids, mask)
                for ids, mask in zip(type_phrase_ids.split(_TYPE_CHUNK_SIZE), type_phrase_mask.split(_TYPE_CHUNK_SIZE))
            ]
        )
        return self._store_type_matrix(key, self._with_examples(matrix, given, configured), generation)

    def _with_examples(self, types: torch.Tensor, given: ExampleVectors | None, configured: bool) -> torch.Tensor:
        """`types` with the label examples mixed in: the given ones, over the stored ones for the configured set."""
        examples = given
        if configured and self.label_example_vectors is not None:
            labels = tuple(self.config.label_example_labels)
            stored = ExampleVectors(rows_of(labels, self.config.label2id, types.device), self.label_example_vectors)
            examples = merge_examples(stored, given)
        return mix_examples(types, examples, self.config.label_example_weight)

    def _bank_with_fresh_rows(
        self,
        bank: torch.Tensor,
        rows: torch.Tensor | None,
        type_phrase_ids: torch.Tensor | None,
        type_phrase_mask: torch.Tensor | None,
        row_scale: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`bank` (no gradient) with `rows` re-encoded from the given phrases, which do carry gradients (multiplied by
        `row_scale` on the way back, the values unchanged)."""
        bank = bank.detach()
        if rows is None:
            return bank
        if type_phrase_ids is None or len(type_phrase_ids) != len(rows):
            raise ValueError(
                f"`type_bank_rows` names {len(rows)} rows; pass their phrases as `type_phrase_ids` (got "
                f"{None if type_phrase_ids is None else len(type_phrase_ids)})."
            )
        if type_phrase_mask is None:
            type_phrase_mask = type_phrase_ids != (self.config.pad_token_id or 0)
        fresh = self.encode_types(type_phrase_ids, type_phrase_mask).to(bank.dtype)
        if row_scale is not None:
            scale = row_scale.to(fresh.dtype)[:, None]
            fresh = fresh.detach() + scale * (fresh - fresh.detach())
        return bank.index_copy(0, rows, fresh)

    def clear_type_cache(self) -> None:
        """Drop cached type matrices (they are also invalidated automatically when weights change)."""
        with _TYPE_CACHE_LOCK:
            self._type_cache.clear()
            self._type_cache_generation += 1

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
        output_hidden_states: bool | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> EntityTypingOutput:
        r"""
        mention_positions (`torch.LongTensor` of shape `(batch_size,)`, *optional*):
            Index of the typing `[MASK]`. Defaults to the first mask token, which is only right before MLM corruption.
        labels (`torch.Tensor` of shape `(batch_size, num_types)`, *optional*):
            Multi-hot targets for the BCE term.
        label_weights (`torch.Tensor` of shape `(batch_size, num_types)`, *optional*):
            Per-example, per-label BCE weights (weak UFET training: `original_label_weight` on original labels,
            `extra_label_weight` on prompt labels, 1 on negatives).
        mlm_labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            MLM targets on the same (corrupted) `input_ids`, -100 elsewhere. The typing slot is never a target.
        nwp_input_ids, nwp_attention_mask, nwp_mention_positions, nwp_labels (*optional*):
            Neighbor-word prediction: `(Left: [MASK])` / `(Right: [MASK])` inputs and the word-piece id to predict at
            their mask (`(nwp_batch,)`). The reference runs NWP as its own optimizer step every 10 steps; here the
            term is added to the loss of the step whose batch carries NWP inputs, so the training script sets the
            schedule by choosing which batches carry them.
        type_phrase_ids, type_phrase_mask (`torch.Tensor` of shape `(num_types, max_phrase_length)`, *optional*):
            A label set for this call instead of the configured one (see `encode_label_set`).
        type_bank (`torch.Tensor` of shape `(num_types, type_dim)`, *optional*):
            Precomputed vectors of the configured label set, scored instead of encoding it (a training bank refreshed
            every few steps, see `training.TypeBank`). With `type_bank_rows` `(k,)`, those rows are replaced by
            `type_phrase_ids` / `type_phrase_mask` (`k` phrases) encoded now, with gradients; `type_bank_row_scale`
            `(k,)` multiplies the gradient each of those rows passes back (not its value), so that a sample of rows
            can stand for all of them in expectation.
        type_example_rows, type_example_vectors (`torch.Tensor` of shapes `(k,)` and `(k, hidden)`, *optional*):
            Label examples for this call (`type_space="encoder"`), from `label_example_inputs`: rows of the label set
            scored and the mean unit vector of each one's examples, mixed into those rows' type vectors.
        """
        encoder_outputs, mention_positions, mention_embeddings = self.encode_mentions(
            input_ids,
            attention_mask,
            token_type_ids,
            mention_positions,
            output_hidden_states=output_hidden_states,
            output_attentions=output_attentions,
            **kwargs,
        )
        sequence_output = encoder_outputs.last_hidden_state
        if type_bank is None:
            type_vectors = self.type_embeddings(
                type_phrase_ids, type_phrase_mask, type_example_rows, type_example_vectors
            )
        elif type_example_rows is not None:
            raise ValueError("A `type_bank` holds finished type vectors: label examples cannot be mixed into it.")
        else:
            type_vectors = self._bank_with_fresh_rows(
                type_bank, type_bank_rows, type_phrase_ids, type_phrase_mask, type_bank_row_scale
            )
        logits = calibrated_scores(mention_embeddings, type_vectors, self.config)

        type_loss = multilabel_bce(logits, labels, label_weights) if labels is not None else None
        mlm_loss = None
        if mlm_labels is not None and self.config.mlm_loss_weight > 0:
            mlm_loss = self._mlm_loss(sequence_output, mlm_labels, mention_positions)
        nwp_loss = None
        if nwp_input_ids is not None and self.nwp_head is not None:
            nwp_loss = self._nwp_loss(nwp_input_ids, nwp_attention_mask, nwp_mention_positions, nwp_labels)

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

    def mention_vectors(
        self, sequence_output: torch.Tensor, mention_positions: torch.Tensor, input_ids: torch.Tensor
    ) -> torch.Tensor:
        """Paper Eq. 1: h_x = LayerNorm(GELU(W h*_x)), the pretrained MLM transform at the typing slot; under
        `type_space="encoder"`, the mean of the mention's pieces with the scorer's scale and bias attached."""
        if self.type_scorer is not None:
            if self.config.pieces_before_slot is None:
                raise ValueError(
                    "`type_space='encoder'` needs the template ids: call `model.get_mention_encoder(tokenizer)` once "
                    "(from_encoder and the pipeline do) before scoring."
                )
            span = mention_span_mask(
                input_ids, mention_positions, self.config.mention_open_ids, self.config.pieces_before_slot
            )
            return self.type_scorer.mention_side(masked_mean(sequence_output, span))
        return self.cls.predictions.transform(gather_positions(sequence_output, mention_positions))

    def default_mention_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The first mask token of each row: the typing slot (only right before MLM corruption adds others)."""
        return first_token_positions(input_ids, self._mask_token_id(), "mask")

    def _mask_token_id(self) -> int:
        if self.config.mask_token_id is None:
            raise ValueError("Pass `mention_positions`: the config does not record the tokenizer's `mask_token_id`.")
        return self.config.mask_token_id

    def _mlm_loss(
        self, sequence_output: torch.Tensor, mlm_labels: torch.Tensor, mention_positions: torch.Tensor
    ) -> torch.Tensor:
        mlm_labels = mlm_labels.clone()
        mlm_labels[torch.arange(mlm_labels.size(0), device=mlm_labels.device), mention_positions] = -100
        targeted = mlm_labels != -100
        # Vocabulary logits only where there is a target: the full (batch, seq, vocab) tensor is never built.
        return token_cross_entropy(self.cls(sequence_output[targeted]), mlm_labels[targeted])

    def _nwp_loss(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor | None,
        targets: torch.Tensor | None,
    ) -> torch.Tensor:
        if targets is None:
            raise ValueError("`nwp_input_ids` needs `nwp_labels`: the word-piece id to predict for each row.")
        if positions is None:
            positions = self.default_mention_positions(input_ids)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return token_cross_entropy(self.nwp_head(gather_positions(hidden, positions)), targets)

    # --------------------------------------------------------------------------------------------------- construction
    @classmethod
    def from_encoder(
        cls,
        name_or_path: str | PathLike,
        labels: Sequence[str] | Mapping[str, str],
        label_phrases: Sequence[str] | Mapping[str, str] | None = None,
        *,
        save_directory: str | PathLike | None = None,
        overwrite: bool = False,
        **config_overrides,
    ) -> EncoderAndTokenizer:
        """A FiveFine model on any BERT checkpoint (Hub name or path), with its tokenizer.

        The encoder, and the MLM head when the checkpoint has one, load by key; a checkpoint without an MLM head
        (e.g. a sentence-embedding BERT) gets a fresh one, which is logged. The NWP head starts as a copy of the MLM
        head (reference). `config_overrides` set any `FiveFineConfig` field. With `save_directory`, model and
        tokenizer are saved there (a folder holding anything is refused, before any weight loads, unless `overwrite`).
        """
        check_save_directory(save_directory, overwrite)
        fields, tokenizer = encoder_config_fields(name_or_path, cls.__name__)
        fields.update(config_overrides, mask_token_id=tokenizer.mask_token_id, pad_token_id=tokenizer.pad_token_id)
        config = FiveFineConfig.from_dict(fields)
        model, loading_info = load_encoder_weights(cls, name_or_path, config)
        _report_loading(name_or_path, loading_info, config.type_space)
        if model.nwp_head is not None:
            model.nwp_head.load_state_dict(model.cls.state_dict())
        tokenizer.model_max_length = config.max_seq_length
        model.get_mention_encoder(tokenizer)  # fails early if the template does not fit this tokenizer
        model.set_label_set(labels, tokenizer, label_phrases)
        if save_directory is not None:
            save_new_model(model, tokenizer, save_directory, overwrite)
        return EncoderAndTokenizer(model, tokenizer)


__all__ = ["BertForPhraseTypeTyping", "TypePhraseEncoder"]
