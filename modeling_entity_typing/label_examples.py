"""Label examples: a few example mentions per label, which a family with `supports_label_examples` folds into its
type vectors without training (given once with `model.set_label_set(..., examples=...)`, or per call with the
pipeline's `label_examples`).

An example takes the pipeline's input form, `{"text": ..., "span": (start, end) or "mention"}` (or the keys `"start"`
and `"end"`), or is a `(text, start, end)` or `(text, span)` tuple. Examples are checked as pipeline inputs are, and a
bad one is named by its label and index.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from .mention_inputs import LISTED_PROBLEMS, InvalidInput, Mention, check_inputs


EXAMPLE_FORMS = "{'text': ..., 'span': (start, end) or 'mention'} or a (text, start, end) tuple"
# How many labels an unknown-label error lists (UFET has 10,331).
LISTED_LABELS = 30


@dataclass(frozen=True)
class LabelExamples:
    """Checked examples: `((label, (mention, ...)), ...)` in the order given. Hashable, so callers cache on it."""

    by_label: tuple[tuple[str, tuple[Mention, ...]], ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.by_label)

    def mentions(self) -> list[tuple[str, int, int]]:
        """The distinct example mentions as `(text, start, end)`, sorted."""
        return sorted({(mention.text, mention.start, mention.end) for _, items in self.by_label for mention in items})

    def check_labels(self, labels: Sequence[str], where: str = "the label set", hint: str = "") -> None:
        """Raise a `ValueError` naming the first label that is not one of `labels` (see `check_example_labels`)."""
        check_example_labels(self.labels, labels, where, hint)


def check_example_labels(
    example_labels: Sequence[str], labels: Sequence[str], where: str = "the label set", hint: str = ""
) -> None:
    """Raise a `ValueError` naming the first of `example_labels` that is not one of `labels`, and listing `labels`."""
    known = set(labels)
    for label in example_labels:
        if label not in known:
            listed = list(labels[:LISTED_LABELS])
            if len(labels) > LISTED_LABELS:
                listed.append(f"... {len(labels) - LISTED_LABELS} more")
            raise ValueError(
                f"The examples name the label {label!r}, which is not in {where} ({len(labels)} labels: {listed}); "
                f"give examples only for labels of the set{hint}."
            )


def _as_input(example: Any) -> Any:
    """A tuple example as the pipeline's dict form; anything else as it is, for the pipeline's checks to name."""
    if isinstance(example, tuple) and len(example) == 3:
        return {"text": example[0], "start": example[1], "end": example[2]}
    if isinstance(example, tuple) and len(example) == 2:
        return {"text": example[0], "span": example[1]}
    return example


def _is_one_example(items: Any) -> bool:
    """Whether `items`, given where a list of examples belongs, is a single example (or a bare text)."""
    return isinstance(items, (str, Mapping)) or (
        isinstance(items, tuple) and bool(items) and isinstance(items[0], str)
    )


def parse_label_examples(
    examples: Mapping[str, Sequence[Any]],
    labels: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    where: str = "the label set",
    hint: str = "",
) -> LabelExamples:
    """Check `{label: [example, ...]}` against the label set `labels` and return it as `LabelExamples`.

    Raises a `TypeError` or `ValueError` saying what is wrong and where: a label outside `labels` (named, with the
    labels listed; `where` names the set and `hint` says how to fix it), an empty or malformed example list, and every
    bad example by label and index, with the pipeline's reason (no text, a span outside the text, no word piece for
    `tokenizer`, ...).
    """
    if not isinstance(examples, Mapping):
        raise TypeError(f"Label examples must be a {{label: [example, ...]}} dict, got {type(examples).__name__}.")
    if not examples:
        raise ValueError("The label examples are an empty dict; give at least one label with examples, or none.")
    labels = list(labels)
    check_example_labels(list(examples), labels, where, hint)
    problems, parsed = [], []
    for label, items in examples.items():
        if _is_one_example(items) or not isinstance(items, Sequence):
            raise TypeError(
                f"The examples of label {label!r} must be a list of examples, got {type(items).__name__} "
                f"{str(items)[:80]}: wrap a single example in a list. An example is {EXAMPLE_FORMS}."
            )
        if not items:
            raise ValueError(
                f"Label {label!r} has an empty example list: give it at least one example, or leave it out."
            )
        checked = check_inputs([_as_input(item) for item in items], tokenizer)
        problems += [
            f"label {label!r}, example {index}: {value.message}"
            for index, value in enumerate(checked)
            if isinstance(value, InvalidInput)
        ]
        parsed.append((label, tuple(checked)))
    if problems:
        listed = problems[:LISTED_PROBLEMS] + [f"... and {len(problems) - LISTED_PROBLEMS} more"] * (
            len(problems) > LISTED_PROBLEMS
        )
        raise ValueError(
            f"{len(problems)} label example(s) are invalid; an example is {EXAMPLE_FORMS}:\n  " + "\n  ".join(listed)
        )
    return LabelExamples(tuple(parsed))


def label_examples_unsupported(model: Any) -> ValueError:
    """The error for label examples given to a model whose `supports_label_examples` is false."""
    return ValueError(
        f"{type(model).__name__} cannot take label examples: they are supported only in FiveFine's encoder type "
        "space (`type_space='encoder'`), where a mention and a type phrase are vectors of one space, so a label's "
        "examples can be averaged into its type vector. Instead, fine-tune this model on the examples (e.g. "
        "examples/finetune_fet.py with them as its training file), use `set_type_prototypes` where the family has it, "
        "or type with a FiveFine model in the encoder space: `BertForPhraseTypeTyping.from_encoder(encoder, labels, "
        "type_space='encoder')`."
    )


__all__ = [
    "EXAMPLE_FORMS",
    "LabelExamples",
    "check_example_labels",
    "label_examples_unsupported",
    "parse_label_examples",
]
