"""`EntityTypingPreTrainedModel`: the base every family subclasses, holding the Hugging Face plumbing they share and
the family contract (`contract.EntityTypingModel`) as documented methods that each family overrides."""

import os
from collections.abc import Mapping, Sequence
from os import PathLike
from types import MappingProxyType
from typing import Any, NamedTuple

import torch
from transformers import MODEL_MAPPING, AutoConfig, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase
from transformers import initialization as init
from transformers.models.bert.modeling_bert import BertEmbeddings, BertLMPredictionHead, BertPreTrainedModel
from transformers.utils import logging

from .contract import EncoderAndTokenizer, EntityTypingModel, MentionEncoder
from .label_examples import label_examples_unsupported
from .output_paths import refuse_to_replace, staged_output_dir


logger = logging.get_logger(__name__)


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
    # The contract's members and their documentation are in `contract.EntityTypingModel` (copied onto these methods
    # below); a capability a family lacks keeps its `False` flag and the method that says so.
    head_parameter_prefixes: tuple[str, ...] = ()
    auxiliary_parameter_prefixes: Mapping[str, tuple[str, ...]] = MappingProxyType({})
    supports_candidate_labels: bool = False
    supports_label_examples: bool = False
    supports_type_subsets: bool = False

    def _not_implemented(self, member: str) -> NotImplementedError:
        return NotImplementedError(f"{type(self).__name__} does not implement `{member}` of the family contract.")

    def set_label_set(self, labels, tokenizer, label_phrases=None, *, examples=None, generator=None) -> Any:
        raise self._not_implemented("set_label_set")

    def label_set_inputs(self, labels, tokenizer) -> dict[str, torch.Tensor]:
        raise ValueError(
            f"{type(self).__name__} types against its trained labels only: its types are learned vectors, so new "
            "labels need `set_label_set` and training (or `set_type_prototypes` where the family has it)."
        )

    def type_subset_inputs(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        raise ValueError(
            f"{type(self).__name__} scores its whole label set at once (`supports_type_subsets` is False): train it "
            "against every type, without a type bank or sampled negative types."
        )

    def label_example_inputs(self, examples, tokenizer, labels=None) -> dict[str, torch.Tensor]:
        raise label_examples_unsupported(self)

    def get_mention_encoder(self, tokenizer: PreTrainedTokenizerBase) -> MentionEncoder:
        raise self._not_implemented("get_mention_encoder")

    def embed_mentions(self, input_ids, attention_mask=None, mention_positions=None, token_type_ids=None):
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

    def type_embeddings(self, **label_set_inputs) -> torch.Tensor:
        raise self._not_implemented("type_embeddings")

    # ------------------------------------------------------------------------------------------------ construction
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
        check_save_directory(save_directory, overwrite)
        encoder_config = AutoConfig.from_pretrained(name_or_path)
        if encoder_config.model_type != "bert":
            raise ValueError(
                f"{str(name_or_path)!r} is a {encoder_config.model_type!r} checkpoint; `{cls.__name__}.from_encoder` "
                "takes a BERT encoder. To load a saved model of this package use `AutoModel.from_pretrained`."
            )
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        fields = {k: v for k, v in encoder_config.to_dict().items() if k not in ("model_type", "architectures")}
        fields.update(config_overrides, mask_token_id=tokenizer.mask_token_id, pad_token_id=tokenizer.pad_token_id)
        config = cls.config_class.from_dict({**fields, **cls.config_fields_for(labels)})
        # transformers' load report calls the new heads "missing" (and a BERT without MLM head "corrupted"); what
        # matters is reported here and by the family instead.
        verbosity = logging.get_verbosity()
        logging.set_verbosity_error()
        try:
            model, loading_info = cls.from_pretrained(name_or_path, config=config, output_loading_info=True)
        finally:
            logging.set_verbosity(verbosity)
        missing_encoder = sorted(key for key in loading_info["missing_keys"] if key.startswith("bert."))
        if missing_encoder:
            logger.warning(
                f"{name_or_path} lacks {len(missing_encoder)} encoder weights, initialised randomly: {missing_encoder}"
            )
        model.start_from_encoder(name_or_path, loading_info, tokenizer, labels)
        tokenizer.model_max_length = config.max_seq_length
        fresh = sorted({key.split(".")[0] for key in loading_info["missing_keys"] if not key.startswith("bert.")})
        logger.info(f"Loaded the encoder from {name_or_path}; new modules: {fresh}")
        if save_directory is not None:
            with staged_output_dir(save_directory, overwrite, _OVERWRITE_SAVE_DIRECTORY) as folder:
                model.save_pretrained(folder)
                tokenizer.save_pretrained(folder)
        return EncoderAndTokenizer(model, tokenizer)

    @classmethod
    def config_fields_for(cls, labels: Sequence[str] | Mapping[str, str]) -> dict[str, Any]:
        """Config fields a new model needs before its weights exist (e.g. one type row per label); none by default."""
        return {}

    def start_from_encoder(self, name_or_path, loading_info: dict, tokenizer: PreTrainedTokenizerBase, labels) -> None:
        """What `from_encoder` does once the encoder's weights are in: the family's own heads, tokens, label set."""
        raise self._not_implemented("start_from_encoder")

    @classmethod
    def untyped_labels(cls, labels: Sequence[str] | Mapping[str, str]) -> Sequence[str] | Mapping[str, str]:
        """The labels `for_labels` gives a new model before `set_label_set`: the labels themselves by default."""
        return labels

    @classmethod
    def for_labels(
        cls,
        name_or_path: str | PathLike,
        labels: Sequence[str] | Mapping[str, str] | None,
        *,
        new_model_overrides: Mapping[str, Any] | None = None,
        label_set_options: Mapping[str, Any] | None = None,
        **config_overrides,
    ) -> EncoderAndTokenizer:
        """A model of this family typing `labels`, from a saved model of the family (its weights, `labels` as its
        new label set) or from any other BERT checkpoint (`from_encoder`, with `new_model_overrides` as well).
        `labels=None` keeps a saved model's label set; `label_set_options` go to `set_label_set`."""
        if AutoConfig.from_pretrained(name_or_path).model_type == cls.config_class.model_type:
            model = cls.from_pretrained(name_or_path, **config_overrides)
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        else:
            overrides = {**(new_model_overrides or {}), **config_overrides}
            start = cls.untyped_labels([] if labels is None else labels)
            model, tokenizer = cls.from_encoder(name_or_path, start, **overrides)
        if labels is not None:
            model.set_label_set(labels, tokenizer, **(label_set_options or {}))
        return EncoderAndTokenizer(model, tokenizer)

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


def saved_family_of(name_or_path: str | PathLike) -> type[EntityTypingPreTrainedModel] | None:
    """The family of a saved model of this package (a registered `AutoModel` class), or `None` for any other
    checkpoint, such as a plain encoder."""
    config_class = type(AutoConfig.from_pretrained(name_or_path))
    model_class = MODEL_MAPPING[config_class] if config_class in MODEL_MAPPING else None
    is_family = isinstance(model_class, type) and issubclass(model_class, EntityTypingPreTrainedModel)
    return model_class if is_family else None


def _document_contract_members(model_class: type, contract: type) -> None:
    """Give each contract member of `model_class` without a docstring of its own the contract's, so that `help()`
    shows it while the text lives in one place (`contract.py`)."""
    for name, member in vars(contract).items():
        own = vars(model_class).get(name)
        if callable(member) and getattr(member, "__doc__", None) and own is not None:
            function = own.__func__ if isinstance(own, classmethod) else own
            if callable(function) and not function.__doc__:
                function.__doc__ = member.__doc__


_document_contract_members(EntityTypingPreTrainedModel, EntityTypingModel)


__all__ = ["EncoderAndTokenizer", "EntityTypingPreTrainedModel", "saved_family_of"]
