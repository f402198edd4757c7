"""`EntityTypingPreTrainedModel`: the base every family subclasses, holding the Hugging Face plumbing they share and
the family contract (`contract.EntityTypingModel`) as documented methods that each family overrides."""

import os
from collections.abc import Mapping, Sequence
from os import PathLike
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from transformers import AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLMPredictionHead, BertPreTrainedModel
from transformers.utils import logging

from .contract import EncoderAndTokenizer, MentionEncoder
from .label_examples import label_examples_unsupported
from .output_paths import refuse_to_replace, staged_output_dir


class EntityTypingPreTrainedModel(PreTrainedModel):
    """Base of the package's models: BERT checkpoints load by key (`bert.*`), gradient checkpointing, SDPA.

    Weight init matches `BertPreTrainedModel`, so a fresh MLM head or encoder starts exactly as in `transformers`;
    families add their own modules' init by overriding `_init_weights` and calling this one.

    It is also where a family implements the contract (`contract.EntityTypingModel`): the members below say what
    callers may rely on, and the methods a family must provide raise `NotImplementedError` until it does. A
    capability a family lacks stays `False` (`supports_candidate_labels`, `supports_label_examples`), so callers
    read the flag, never `hasattr`.
    """

    base_model_prefix = "bert"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _no_split_modules = ["BertLayer"]
    _can_record_outputs = BertPreTrainedModel._can_record_outputs
    # Parameter-name prefixes of the typing head on top of the encoder; the optimiser may give them their own
    # learning rate (`--head_learning_rate`), since they start fresh or from a prior while the encoder is pretrained.
    head_parameter_prefixes: tuple[str, ...] = ()
    # Per auxiliary loss term ("mlm", "nwp", ...), prefixes of the parameters that only that term trains: training
    # freezes them when the term is off, since DDP needs a gradient for every trainable parameter.
    auxiliary_parameter_prefixes: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    # Whether `label_set_inputs` can score against labels given at call time (the pipeline's `candidate_labels`).
    supports_candidate_labels: bool = False
    # Whether a label's examples shape its type vector without training (`set_label_set(..., examples=)`).
    supports_label_examples: bool = False

    # ------------------------------------------------------------------------------------------------ the contract
    def _not_implemented(self, member: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not implement `{member}` of the family contract.")

    def set_label_set(
        self,
        labels: Sequence[str] | Mapping[str, str],
        tokenizer: PreTrainedTokenizerBase,
        label_phrases: Sequence[str] | Mapping[str, str] | None = None,
        *,
        examples: Mapping[str, Sequence[Any]] | None = None,
    ) -> Any:
        """Make `labels` (a list, or `{label: phrase}`) the configured label set; `save_pretrained` keeps it.
        `examples` (`{label: [example, ...]}`) only where `supports_label_examples`."""
        raise self._not_implemented("set_label_set")

    def label_set_inputs(
        self, labels: Sequence[str] | Mapping[str, str], tokenizer: PreTrainedTokenizerBase
    ) -> dict[str, torch.Tensor]:
        """Keyword arguments for `forward` that score against `labels` instead of the configured label set.

        Only where `supports_candidate_labels`; other families type against their trained labels only.
        """
        raise ValueError(
            f"{type(self).__name__} types against its trained labels only: its types are learned vectors, so new "
            "labels need `set_label_set` and training (or `set_type_prototypes` where the family has it)."
        )

    def label_example_inputs(
        self,
        examples: Mapping[str, Sequence[Any]],
        tokenizer: PreTrainedTokenizerBase,
        labels: Sequence[str] | Mapping[str, str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Keyword arguments for `forward` that add label examples to the label set scored.

        Only where `supports_label_examples`; other families refuse examples with what to do instead.
        """
        raise label_examples_unsupported(self)

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> MentionEncoder:
        """The encoder that turns (text, character span) into this model's input."""
        raise self._not_implemented("get_mention_encoder")

    def embed_mentions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mention vectors `(batch, hidden)`: `forward(...).logits == embed_mentions(...) @ type_embeddings().T`."""
        return self.encode_mentions(input_ids, attention_mask, token_type_ids, mention_positions).mention_embeddings

    # A family says where its mention vector is read and how it is formed; the encoder pass is shared.
    def default_mention_positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Where each row's mention vector is read when the caller gives no `mention_positions`."""
        raise self._not_implemented("default_mention_positions")

    def mention_vectors(
        self, sequence_output: torch.Tensor, mention_positions: torch.Tensor, input_ids: torch.Tensor
    ) -> torch.Tensor:
        """The family's mention vectors from the encoder's last hidden states at `mention_positions` (`input_ids`
        for a family that pools over the mention's own pieces)."""
        raise self._not_implemented("mention_vectors")

    def encode_mentions(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        mention_positions: torch.Tensor | None = None,
        **encoder_kwargs,
    ) -> "EncodedMentions":
        """The encoder pass every family's `forward` and `embed_mentions` start with: encoder outputs, the positions
        read, and the mention vectors there."""
        outputs = self.bert(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            return_dict=True,
            **encoder_kwargs,
        )
        if mention_positions is None:
            mention_positions = self.default_mention_positions(input_ids)
        vectors = self.mention_vectors(outputs.last_hidden_state, mention_positions, input_ids)
        return EncodedMentions(outputs, mention_positions, vectors)

    def type_embeddings(self) -> torch.Tensor:
        """Type vectors `(num_types, hidden)` of the configured label set."""
        raise self._not_implemented("type_embeddings")

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str | PathLike,
        labels: Sequence[str] | Mapping[str, str],
        *,
        save_directory: str | PathLike | None = None,
        overwrite: bool = False,
        **config_overrides,
    ) -> EncoderAndTokenizer:
        """A new model of the family on a plain BERT checkpoint, with the tokenizer its inputs need."""
        raise NotImplementedError(f"{cls.__name__} does not implement `from_encoder` of the family contract.")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | PathLike | None,
        *model_args,
        use_safetensors: bool | None = True,
        **kwargs,
    ):
        """`PreTrainedModel.from_pretrained` that reads safetensors weights only, unless `use_safetensors=False`.

        Unpickling a `pytorch_model.bin` can run code, so it is refused by default, with how to convert it.
        """
        try:
            return super().from_pretrained(
                pretrained_model_name_or_path, *model_args, use_safetensors=use_safetensors, **kwargs
            )
        except OSError as error:
            pickled = _pickle_weights_in(pretrained_model_name_or_path, kwargs.get("subfolder") or "")
            if use_safetensors is not True or not pickled:
                raise
            path = str(pretrained_model_name_or_path)
            raise OSError(
                f"{path!r} holds only PyTorch pickle weights ({pickled}), and {cls.__name__}.from_pretrained reads "
                "safetensors only because unpickling a file can run code. If you trust the file, convert it once: "
                f"`{cls.__name__}.from_pretrained({path!r}, use_safetensors=False).save_pretrained({path!r})` writes "
                "model.safetensors beside it (or pass `use_safetensors=False` to load the pickle as it is)."
            ) from error

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, BertLMPredictionHead):
            init.zeros_(module.bias)
        elif isinstance(module, BertEmbeddings):
            init.copy_(module.position_ids, torch.arange(module.position_ids.shape[-1]).expand((1, -1)))
            init.zeros_(module.token_type_ids)


class EncodedMentions(NamedTuple):
    """`encode_mentions`' result: the encoder's outputs, the mention positions read and the mention vectors."""

    encoder_outputs: Any
    mention_positions: torch.Tensor
    mention_embeddings: torch.Tensor


def _pickle_weights_in(path: str | PathLike | None, subfolder: str) -> str | None:
    """The name of the pickle weights file of a local checkpoint folder that has no safetensors, if there is one."""
    if path is None or not os.path.isdir(os.path.join(path, subfolder)):
        return None
    for name in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
        if os.path.isfile(os.path.join(path, subfolder, name)):
            return name
    return None


# How `from_encoder` is allowed to replace what `save_directory` holds.
_OVERWRITE_SAVE_DIRECTORY = "`overwrite=True` to `from_encoder`"


def check_save_directory(save_directory: str | PathLike | None, overwrite: bool) -> None:
    """Refuse a `from_encoder` `save_directory` that holds anything, before any weight loads (unless `overwrite`)."""
    if save_directory is not None:
        refuse_to_replace([save_directory], overwrite, _OVERWRITE_SAVE_DIRECTORY)


def save_new_model(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, save_directory: str | PathLike, overwrite: bool
) -> None:
    """Write a model built by `from_encoder` and its tokenizer, through a staging folder renamed into place."""
    with staged_output_dir(save_directory, overwrite, _OVERWRITE_SAVE_DIRECTORY) as folder:
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)


def encoder_config_fields(name_or_path: str | PathLike, family: str) -> tuple[dict, PreTrainedTokenizerBase]:
    """The BERT config fields of a plain encoder checkpoint, for a family's config, and its tokenizer."""
    encoder_config = AutoConfig.from_pretrained(name_or_path)
    if encoder_config.model_type != "bert":
        raise ValueError(
            f"{str(name_or_path)!r} is a {encoder_config.model_type!r} checkpoint; `{family}.from_encoder` takes a "
            "BERT encoder. To load a saved model of this package use `AutoModel.from_pretrained`."
        )
    fields = {k: v for k, v in encoder_config.to_dict().items() if k not in ("model_type", "architectures")}
    return fields, AutoTokenizer.from_pretrained(name_or_path)


def load_encoder_weights(model_class, name_or_path: str | PathLike, config) -> tuple[PreTrainedModel, dict]:
    """`from_pretrained` of an encoder checkpoint into a family's model, returning the loading info.

    transformers' load report calls the new heads "missing" (and a BERT without MLM head "corrupted"); the families
    report what matters instead, so the report is silenced here.
    """
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        return model_class.from_pretrained(name_or_path, config=config, output_loading_info=True)
    finally:
        logging.set_verbosity(verbosity)


__all__ = ["EncoderAndTokenizer", "EntityTypingPreTrainedModel", "encoder_config_fields", "load_encoder_weights"]
