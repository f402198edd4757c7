"""`pipeline("entity-typing")`: type a mention, given by a character span or its string, in a text."""

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset
from torch.utils.data import IterableDataset as TorchIterableDataset
from transformers import Pipeline
from transformers.utils import logging


try:
    import datasets
except ImportError:  # pragma: no cover - `datasets` is a dependency; keep the pipeline importable without it
    datasets = None

from ..contract import EntityTypingModel
from ..decision import check_rule_options, decide, own_thresholds, resolve_rule
from ..label_examples import LabelExamples, label_examples_unsupported, parse_label_examples
from ..label_sets import LabelSet
from ..mention_inputs import (
    EntityTypingInputError,
    InvalidInput,
    Mention,
    batch_error,
    check_batch_size,
    check_errors_mode,
    check_inputs,
    parse_input,
    problems_of,
)


logger = logging.get_logger(__name__)

OPTIONS = ("threshold", "top_k", "decision", "candidate_labels", "label_examples", "errors")


@dataclass(frozen=True)
class _Item:
    """One input of a batch or stream with its position, so that an error can name it; `listed` when it came in a
    list, which was checked whole before the model ran (nothing of it has been returned)."""

    index: int
    value: Any
    listed: bool = False


def check_options(threshold, top_k, decision, errors: str | None = None) -> None:
    """Raise a `ValueError` naming the first bad option: the decision options as everywhere, then `errors`."""
    check_rule_options(threshold, top_k, decision)
    check_errors_mode(errors)


class _Indexed(TorchDataset):
    """A sized dataset (a `datasets.Dataset`, a torch map-style dataset) whose rows come back as `_Item`s."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> _Item:
        return _Item(index, self.dataset[index])


def _is_collection(inputs: Any) -> bool:
    """Whether `inputs` holds many mentions (not one text, one dict or one non-iterable value)."""
    if isinstance(inputs, (str, bytes, bytearray, Mapping)) or inputs is None:
        return False
    is_table = datasets is not None and isinstance(inputs, datasets.Dataset)
    return is_table or isinstance(inputs, (Iterable, TorchDataset))


def _as_stream(inputs: Any) -> Any:
    """Route an iterable of mentions to the base pipeline's lazy paths, each row tagged with its index.

    The base knows torch map-style datasets and generators; a `datasets.Dataset` is neither, and a tuple or any
    other iterable would be taken for one input.
    """
    sized = isinstance(inputs, TorchDataset) and not isinstance(inputs, TorchIterableDataset)
    if sized or (datasets is not None and isinstance(inputs, datasets.Dataset)):
        return _Indexed(inputs)
    return (_Item(index, item) for index, item in enumerate(inputs))


class EntityTypingPipeline(Pipeline):
    """Types entity mentions with any model of this package.

    ```python
    >>> typer = pipeline("entity-typing", model="path/to/model")
    >>> typer("Mark Twain wrote Tom Sawyer.", span=(0, 10))
    {'mention': 'Mark Twain', 'span': (0, 10), 'labels': [{'label': 'person', 'score': 0.97}, ...], 'truncated': False,
     'mention_truncated': False}
    >>> typer([{"text": t, "span": s} for t, s in items], batch_size=32, candidate_labels=["writer", "city"])
    >>> typer(load_mentions("test.jsonl"))  # records {"text", "start", "end", "labels", ...}: labels are ignored
    ```

    Inputs: a text with `span=(start, end)` (character offsets, end exclusive) or `span="Mark Twain"`, or dicts with
    `"text"` and either `"span"` or `"start"` and `"end"` (other keys are ignored), in a list (a list comes back) or
    in a generator, a `datasets.Dataset`, a dataset column or any other iterable (results stream back lazily).
    A mention string is matched as a whole word: the first occurrence with no letter, digit or `_` right before or
    after it (so `span="Paris"` skips "Parisian"); only when there is none, the first occurrence anywhere.

    Options: `candidate_labels` (a list, or `{label: phrase}`) types against a new label set with no fine-tuning
    (models whose `supports_candidate_labels` is true). `label_examples={label: [example, ...]}` (an example as an
    input here, `{"text", "span"}`, or `(text, start, end)`) moves each such label's type vector towards its examples,
    with no fine-tuning (models whose `supports_label_examples` is true: FiveFine in the encoder type space); they
    name labels of `candidate_labels`, or without it of the model's own label set, where they override the examples
    stored with `set_label_set(..., examples=...)` label by label.

    Which labels come back follows transformers' `top_k`:

    * neither `threshold` nor `top_k`: the model's rule, `config.decision` at `config.threshold`;
    * `top_k=k` alone: the k best labels;
    * `threshold=t` alone: every label with probability >= t (the best one if none passes);
    * both: the threshold, then at most k labels;
    * `decision="threshold"` or `"argmax_with_ancestors"` (the best label plus its `/`-path ancestors) names the rule
      outright; `top_k` then caps it, and `threshold` goes with `"threshold"` only.

    Bad inputs: a single input raises `ValueError` or `TypeError` saying what is wrong (text or a label holding a lone
    UTF-16 surrogate, which no tokenizer can read, is named with its offset). A list is checked whole before
    the model runs: if any item is bad nothing is typed, and one `EntityTypingInputError` (a `ValueError` and a
    `TypeError`) names every bad item's index and problem (`error.problems`). A stream is checked as it is read:
    the error names the item's index, and the results before it have already been returned. With `errors="return"`
    nothing is raised for a bad input: it comes back as `{"index": i, "error": message}` in its place, and the
    other inputs are typed as usual.

    Output per mention: the labels as `{"label", "score"}` by descending score, the mention and span, and whether the
    context (`truncated`) or the mention itself (`mention_truncated`) had to be cut to fit the model. A model that
    scores with NaN or inf (damaged weights) gets one warning per pipeline.
    """

    _load_processor = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = True
    # Label sets whose phrase inputs are kept for `candidate_labels`, least recently used evicted first.
    phrase_cache_size = 8

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_batch_size(self._batch_size)
        if not isinstance(self.model, EntityTypingModel):
            raise TypeError(
                f"The entity-typing pipeline types with a model of this package, got {type(self.model).__name__}, "
                "which does not implement the family contract (`modeling_entity_typing.contract.EntityTypingModel`)."
            )
        self.mention_encoder = self.model.get_mention_encoder(self.tokenizer)
        self._phrase_inputs: OrderedDict[LabelSet, dict[str, torch.Tensor]] = OrderedDict()
        self._phrase_lock = threading.Lock()
        self._configured_labels: tuple[Any, list[str]] = (None, [])
        self._own_threshold_cache: tuple[Any, float | torch.Tensor | None] = (None, None)
        self._placeholder: dict[str, torch.Tensor] | None = None
        self._warned_not_finite = False

    def __call__(self, inputs, span=None, **kwargs):
        """Type one mention (a text with `span=`, or one dict) or many (a list, or any iterable of dicts)."""
        check_batch_size(kwargs.get("batch_size"))
        if not _is_collection(inputs):
            if not isinstance(inputs, Mapping):
                inputs = {"text": inputs, "span": span}
            elif span is not None:
                raise TypeError("`span=` goes with a text. In a dict give it as the key: {'text': ..., 'span': ...}.")
            return super().__call__(inputs, **kwargs)
        if span is not None:
            raise TypeError(
                "`span=` goes with a single text. For many mentions pass dicts: [{'text': ..., 'span': ...}, ...]."
            )
        if not isinstance(inputs, list):
            return super().__call__(_as_stream(inputs), **kwargs)
        # bad options are reported before bad items, and for an empty list too
        self._sanitize_parameters(**{k: v for k, v in kwargs.items() if k not in ("batch_size", "num_workers")})
        if not inputs:
            return []
        errors = kwargs.get("errors") or self._preprocess_params.get("errors", "raise")
        checked = check_inputs(inputs, self.tokenizer)
        problems = problems_of(checked)
        if problems and errors == "raise":
            raise batch_error(problems, len(inputs))
        return super().__call__([_Item(index, value, listed=True) for index, value in enumerate(checked)], **kwargs)

    def _sanitize_parameters(
        self,
        threshold=None,
        top_k=None,
        decision=None,
        candidate_labels=None,
        label_examples=None,
        errors=None,
        **unknown,
    ):
        if unknown:
            raise TypeError(
                f"Unknown option(s) {sorted(unknown)}; the entity-typing pipeline takes {OPTIONS} and the usual "
                "`batch_size` / `num_workers`."
            )
        check_options(threshold, top_k, decision, errors)
        preprocess_params, forward_params, postprocess_params = {}, {}, {}
        if errors is not None:
            preprocess_params["errors"] = errors
        if candidate_labels is not None:
            if not self.model.supports_candidate_labels:
                raise ValueError(f"{type(self.model).__name__} types against its trained labels only.")
            if isinstance(candidate_labels, str):
                raise TypeError("`candidate_labels` must be a list of labels or a {label: phrase} dict, not a string.")
            label_set = LabelSet.create(candidate_labels)
            forward_params["label_set"] = postprocess_params["label_set"] = label_set
        if label_examples is not None:
            forward_params["label_examples"] = self._checked_examples(label_examples, forward_params.get("label_set"))
        for name, value in (("threshold", threshold), ("top_k", top_k), ("decision", decision)):
            if value is not None:
                postprocess_params[name] = value
        return preprocess_params, forward_params, postprocess_params

    def _checked_examples(self, label_examples: Any, label_set: LabelSet | None) -> LabelExamples:
        """`label_examples` checked against the candidate labels, or the model's own label set without them."""
        if not self.model.supports_label_examples:
            raise label_examples_unsupported(self.model)
        if label_set is not None:
            return parse_label_examples(label_examples, label_set.labels, self.tokenizer, "`candidate_labels`")
        return parse_label_examples(
            label_examples,
            self._labels_of_config(),
            self.tokenizer,
            "the model's label set",
            " (to type against other labels, pass them as `candidate_labels` too)",
        )

    def preprocess(self, inputs, errors: str = "raise") -> dict[str, Any]:
        index, listed = None, False
        if isinstance(inputs, _Item):
            index, listed, inputs = inputs.index, inputs.listed, inputs.value
        try:
            if isinstance(inputs, InvalidInput):
                raise ValueError(inputs.message)
            mention = inputs if isinstance(inputs, Mention) else parse_input(inputs)
            encoded = self.mention_encoder.encode(mention.text, mention.start, mention.end)
        except (TypeError, ValueError) as error:
            if errors == "return":
                return self._error_inputs(index, str(error))
            if index is None:
                raise
            # A list comes back whole or not at all; a stream has already handed out the results before this item.
            if listed:
                returned = "Nothing of the list was returned"
            else:
                returned = "The results of earlier batches were already returned"
            raise EntityTypingInputError(
                f"Input {index} is invalid: {error} ({returned}; pass errors='return' to get "
                "{'index', 'error'} in place of each bad input instead.)",
                {index: str(error)},
            ) from error
        return {
            "input_ids": torch.tensor([encoded.input_ids]),
            "attention_mask": torch.ones(1, len(encoded.input_ids), dtype=torch.long),
            "mention_positions": torch.tensor([encoded.mention_position]),
            "meta": {
                "mention": mention.text[mention.start : mention.end],
                "span": (mention.start, mention.end),
                "truncated": encoded.truncated,
                "mention_truncated": encoded.mention_truncated,
            },
        }

    def _error_inputs(self, index: int | None, message: str) -> dict[str, Any]:
        """Model inputs standing in for a bad input under `errors="return"`: a one-word text, whose result is dropped.

        Batches are padded together before the model runs, so a bad item needs inputs too; the word is cheap.
        """
        if self._placeholder is None:
            encoded = self.mention_encoder.encode("placeholder", 0, len("placeholder"))
            self._placeholder = {
                "input_ids": torch.tensor([encoded.input_ids]),
                "attention_mask": torch.ones(1, len(encoded.input_ids), dtype=torch.long),
                "mention_positions": torch.tensor([encoded.mention_position]),
            }
        return {**self._placeholder, "meta": {"error": message, "index": index}}

    def _phrase_inputs_of(self, label_set: LabelSet) -> dict[str, torch.Tensor]:
        """The `forward` inputs of `label_set`, from a small LRU cache shared by threads (sets can hold 10k labels)."""
        with self._phrase_lock:
            if label_set in self._phrase_inputs:
                self._phrase_inputs.move_to_end(label_set)
                return self._phrase_inputs[label_set]
        phrase_inputs = self.model.label_set_inputs(label_set, self.tokenizer)
        with self._phrase_lock:
            self._phrase_inputs[label_set] = phrase_inputs
            self._phrase_inputs.move_to_end(label_set)
            while len(self._phrase_inputs) > self.phrase_cache_size:
                self._phrase_inputs.popitem(last=False)
        return phrase_inputs

    def _forward(
        self,
        model_inputs: dict[str, Any],
        label_set: LabelSet | None = None,
        label_examples: LabelExamples | None = None,
    ) -> dict[str, Any]:
        meta = model_inputs.pop("meta")
        if label_set is not None:
            model_inputs.update(self._phrase_inputs_of(label_set))
        if label_examples is not None:  # the model keeps their vectors while its weights stay the same
            model_inputs.update(self.model.label_example_inputs(label_examples, self.tokenizer, label_set))
        logits = self.model(**model_inputs).logits
        self._warn_if_not_finite(logits)
        return {"logits": logits, "meta": meta}

    def _warn_if_not_finite(self, logits: torch.Tensor) -> None:
        """Warn, once per pipeline, when the model scores a batch with NaN or inf: its scores would come back `nan`
        (or 0 and 1) with nothing else to show that the model, not the input, is broken. One reduction per batch."""
        if self._warned_not_finite:
            return
        finite = torch.isfinite(logits).all(dim=-1)
        if bool(finite.all()):
            return
        self._warned_not_finite = True
        logger.warning(
            f"The model gave non-finite logits (NaN or inf) for {int((~finite).sum())} of {finite.numel()} mentions "
            "of a batch, so their scores are nan (or exactly 0 or 1) and the labels chosen from them mean nothing. "
            "Its weights probably hold NaN or inf (a damaged or badly converted checkpoint, or a training run that "
            "diverged), or half precision overflowed: check `all(p.isfinite().all() for p in model.parameters())`. "
            "Said once per pipeline."
        )

    def _labels_of_config(self) -> list[str]:
        # Keyed on the dict object itself (held, so its id cannot be reused): `set_label_set` assigns a new one.
        id2label = self.model.config.id2label
        if self._configured_labels[0] is not id2label:
            self._configured_labels = (id2label, self.model.config.label_list())
        return self._configured_labels[1]

    def _own_thresholds(self, labels: list[str]) -> float | torch.Tensor:
        """The default threshold of each own label, built once per label set, `label_thresholds` and `threshold`."""
        config = self.model.config
        # The objects themselves are held (not their ids, which could be reused); a new dict is a new key.
        key = (config.id2label, config.label_thresholds, config.threshold)
        cached_key, cached = self._own_threshold_cache
        if cached_key is None or any(a is not b for a, b in zip(cached_key[:2], key[:2])) or cached_key[2] != key[2]:
            cached = own_thresholds(config.threshold, config.label_thresholds, labels)
            self._own_threshold_cache = (key, cached)
        return cached

    def postprocess(
        self,
        model_outputs: dict[str, Any],
        threshold: float | None = None,
        top_k: int | None = None,
        decision: str | None = None,
        label_set: LabelSet | None = None,
    ) -> dict[str, Any]:
        meta = model_outputs["meta"]
        if "error" in meta:
            if meta["index"] is None:  # a single input
                return {"error": meta["error"]}
            return {"index": meta["index"], "error": meta["error"]}
        config = self.model.config
        labels = label_set.labels if label_set is not None else self._labels_of_config()
        probabilities = model_outputs["logits"][0].float().sigmoid()
        # labels given at call time have no threshold of their own; the model's own labels may (`label_thresholds`)
        default = config.threshold if label_set is not None else self._own_thresholds(labels)
        decision, threshold = resolve_rule(decision, threshold, top_k, config.decision, default)
        predicted = decide(probabilities, labels, decision=decision, threshold=threshold, top_k=top_k)
        return {**meta, "labels": predicted}


__all__ = ["EntityTypingInputError", "EntityTypingPipeline", "check_options"]
