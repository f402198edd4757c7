"""Machine translation of mention examples that keeps the mention span (Cross-C's cross-lingual data).

Cross-C (Han et al., ACL 2022, §3) machine-translates its English distant data (and the evaluation sets)
into Chinese; how the reference code recovered the mention span is unknown. Here the mention is wrapped in markers,
`Paris is nice` -> `[[Paris]] is nice`, the sentence is translated, and the markers are located and stripped in the
output: `[[巴黎]]很美` -> text `巴黎很美`, span (0, 2). Whitespace the translation puts at a marker is kept as one
space between two spaced-script characters (`in [[ Paris ]] today` -> `in Paris today`) and dropped next to a
Chinese / Japanese / Thai character (`在 [[ 巴黎 ]] 住` -> `在巴黎住`). A translation whose markers do not survive
(missing, duplicated, in the wrong order, nothing between them) is dropped and counted per reason.

Any object with `translate(texts, source_lang, target_lang) -> list[str]` is a `Translator`; `Seq2SeqTranslator` runs
a local or Hub sequence-to-sequence model (e.g. `Helsinki-NLP/opus-mt-en-zh`). transformers 5 removed the
`"translation"` pipeline task, so it calls `AutoModelForSeq2SeqLM.generate` directly.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import datasets
from tqdm.auto import tqdm


logger = logging.getLogger(__name__)

DROP_REASONS: tuple[str, ...] = ("markers_missing", "markers_duplicated", "markers_reordered", "empty_mention")
# Scripts written without spaces between words: a marker's whitespace next to these is an artefact of the marker.
_NO_SPACE_SCRIPT = re.compile(
    r"[\u0e00-\u0e7f\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
)
_OPUS_PAIR = re.compile(r"opus-mt-([a-z]{2,3})-([a-z]{2,3})$")


@runtime_checkable
class Translator(Protocol):
    """Translates a batch of sentences; returns one string per input, in order."""

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]: ...


class Seq2SeqTranslator:
    """A sequence-to-sequence MT model (`AutoModelForSeq2SeqLM`), loaded on first use.

    Args:
        model_name_or_path (`str`):
            Hub id or local directory, e.g. `"Helsinki-NLP/opus-mt-en-zh"` (needs `sentencepiece`).
        device (`str` or `int`, *optional*):
            Torch device; default `"cuda"` when available, else `"cpu"`.
        batch_size (`int`, *optional*, defaults to 16):
            Sentences per `generate` call.
        max_new_tokens (`int`, *optional*, defaults to 256):
            Length limit of a translation.
        language_pair (`tuple[str, str]`, *optional*):
            The (source, target) languages the model translates, checked on every call; read from `opus-mt-xx-yy`
            model names when not given.

    ```python
    >>> translator = Seq2SeqTranslator("Helsinki-NLP/opus-mt-en-zh")
    >>> translator.translate(["[[Paris]] is the capital of France."], "en", "zh")  # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        model_name_or_path: str,
        device: str | int | None = None,
        batch_size: int = 16,
        max_new_tokens: int = 256,
        language_pair: tuple[str, str] | None = None,
    ):
        if not isinstance(model_name_or_path, str) or not model_name_or_path.strip():
            raise ValueError(f"`model_name_or_path` must be a Hub id or a local path, got {model_name_or_path!r}.")
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if language_pair is None and (match := _OPUS_PAIR.search(model_name_or_path.rstrip("/"))):
            language_pair = (match.group(1), match.group(2))
        self.model_name_or_path = model_name_or_path
        self.device = device
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.language_pair = tuple(language_pair) if language_pair else None
        self._model = self._tokenizer = None

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        name = self.model_name_or_path
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(name)
            self._model = AutoModelForSeq2SeqLM.from_pretrained(name)
        except (OSError, ImportError, ValueError) as error:
            raise OSError(
                f"Could not load the translation model {name!r} ({type(error).__name__}: {error}). Give a local "
                f"directory, or download it once with `hf download {name}` while online (offline runs, "
                "HF_HUB_OFFLINE=1, read only the local cache); Marian models also need `pip install sentencepiece`."
            ) from error
        device = self.device if self.device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(device).eval()

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]:
        if self.language_pair and (source_lang, target_lang) != self.language_pair:
            raise ValueError(
                f"{self.model_name_or_path!r} translates {self.language_pair[0]} -> {self.language_pair[1]}, but "
                f"{source_lang} -> {target_lang} was asked; use a model for that pair or pass `language_pair`."
            )
        if self._model is None:
            self._load()
        import torch

        outputs = []
        for start in range(0, len(texts), self.batch_size):
            inputs = self._tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                generated = self._model.generate(**inputs.to(self._model.device), max_new_tokens=self.max_new_tokens)
            outputs += self._tokenizer.batch_decode(generated, skip_special_tokens=True)
        return outputs


# ------------------------------------------------------------------------------------------------ span projection
class MarkerError(ValueError):
    """The markers did not survive translation; `reason` is one of `DROP_REASONS`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def mark_mention(text: str, start: int, end: int, markers: tuple[str, str] = ("[[", "]]")) -> str:
    """`text` with the mention `text[start:end]` wrapped in the two markers."""
    return f"{text[:start]}{markers[0]}{text[start:end]}{markers[1]}{text[end:]}"


def _gap(left: str, right: str, had_space: bool) -> str:
    if not had_space or not left or not right:
        return ""
    return "" if _NO_SPACE_SCRIPT.match(left[-1]) or _NO_SPACE_SCRIPT.match(right[0]) else " "


def unmark_mention(translated: str, markers: tuple[str, str] = ("[[", "]]")) -> tuple[str, int, int]:
    """(text without markers, start, end) of a translated marked sentence; raises `MarkerError` with the reason."""
    opening, closing = markers
    opened, closed = translated.count(opening), translated.count(closing)
    if not opened or not closed:
        raise MarkerError("markers_missing")
    if opened > 1 or closed > 1:
        raise MarkerError("markers_duplicated")
    i, j = translated.index(opening), translated.index(closing)
    if j < i + len(opening):
        raise MarkerError("markers_reordered")
    left, inner, right = translated[:i], translated[i + len(opening) : j], translated[j + len(closing) :]
    mention, before, after = inner.strip(), left.rstrip(), right.lstrip()
    if not mention:
        raise MarkerError("empty_mention")
    gap_before = _gap(before, mention, before != left or inner[:1].isspace())
    gap_after = _gap(mention, after, after != right or inner[-1:].isspace())
    start = len(before) + len(gap_before)
    return before + gap_before + mention + gap_after + after, start, start + len(mention)


# ------------------------------------------------------------------------------------------------ datasets
@dataclass
class TranslationReport:
    """Rows in, rows translated, distinct sentences sent to the translator, and the rows dropped per reason."""

    rows: int = 0
    translated: int = 0
    texts_translated: int = 0
    dropped: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {**vars(self), "dropped": dict(self.dropped)}

    def log(self, source_lang: str, target_lang: str) -> None:
        message = (
            f"Translated {self.translated} of {self.rows} mention rows {source_lang} -> {target_lang} "
            f"({self.texts_translated} distinct sentences); dropped {dict(self.dropped)}."
        )
        (logger.warning if self.dropped else logger.info)(message)


def _mark_batch(batch: dict[str, list], markers: tuple[str, str], source_lang: str) -> dict[str, list]:
    marked, reasons = [], []
    for text, start, end, lang in zip(batch["text"], batch["start"], batch["end"], batch["lang"]):
        reason = None
        if lang != source_lang:
            reason = "not_source_language"
        elif markers[0] in text or markers[1] in text:
            reason = "markers_in_source"
        marked.append(None if reason else mark_mention(text, start, end, markers))
        reasons.append(reason)
    return {"marked_text": marked, "drop_reason": reasons}


def _project_batch(batch: dict[str, list], markers: tuple[str, str], target_lang: str) -> dict[str, list]:
    out = {key: list(batch[key]) for key in ("id", "text", "start", "end", "lang", "source_id", "drop_reason")}
    for row, translated in enumerate(batch["translation"]):
        if out["drop_reason"][row]:
            continue
        try:
            text, start, end = unmark_mention(translated, markers)
        except MarkerError as error:
            out["drop_reason"][row] = error.reason
            continue
        out["source_id"][row] = batch["id"][row]
        out["id"][row] = f"{batch['id'][row]}@{target_lang}"
        out["text"][row], out["start"][row], out["end"][row], out["lang"][row] = text, start, end, target_lang
    return out


def _check_arguments(dataset, translator, source_lang, target_lang, batch_size, markers) -> None:
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(
            f"`dataset` must be a datasets.Dataset, got {type(dataset).__name__}; materialise a streamed one first "
            "(e.g. `datasets.Dataset.from_generator(lambda: iter(streamed), features=streamed.features)`)."
        )
    missing = {"id", "text", "start", "end", "lang"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"`dataset` lacks the columns {sorted(missing)}; rows are {{id, text, start, end, lang}}.")
    if not isinstance(translator, Translator):
        raise TypeError(f"`translator` needs a translate(texts, source_lang, target_lang) method, got {translator!r}.")
    if not source_lang or not target_lang or source_lang == target_lang:
        raise ValueError(f"Need two different languages, got {source_lang!r} -> {target_lang!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if len(markers) != 2 or not all(markers) or markers[0] == markers[1]:
        raise ValueError(f"`markers` must be two different non-empty strings, got {markers!r}.")


def _translate_texts(texts: list[str], translator: Translator, source_lang, target_lang, batch_size, progress):
    translations = {}
    for start in tqdm(range(0, len(texts), batch_size), desc="Translating", disable=not progress):
        chunk = texts[start : start + batch_size]
        result = translator.translate(chunk, source_lang, target_lang)
        if not isinstance(result, list) or len(result) != len(chunk) or not all(isinstance(t, str) for t in result):
            raise ValueError(
                f"{type(translator).__name__}.translate returned {type(result).__name__} "
                f"{str(result)[:80]!r} for {len(chunk)} texts; it must return a list of one string per text, in order."
            )
        translations.update(zip(chunk, result))
    return translations


def translate_mentions(
    dataset: datasets.Dataset,
    translator: Translator,
    source_lang: str,
    target_lang: str,
    batch_size: int = 32,
    markers: tuple[str, str] = ("[[", "]]"),
    show_progress_bar: bool = False,
) -> tuple[datasets.Dataset, TranslationReport]:
    """Translated copies of the `source_lang` rows of a mention dataset, spans recomputed, and what was dropped.

    A translated row gets `id` `<id>@<target_lang>`, `lang=target_lang`, `source_id=<id>` and keeps every other column
    (`entity`, `group_id`, `rule`, ...). Each distinct marked sentence is translated once. Rows in another language
    (`not_source_language`), rows whose text already contains a marker (`markers_in_source`) and translations whose
    markers did not survive (`DROP_REASONS`) are left out and counted in the report, which is also logged.
    """
    markers = tuple(markers)
    _check_arguments(dataset, translator, source_lang, target_lang, batch_size, markers)
    report = TranslationReport(rows=len(dataset))
    if "source_id" not in dataset.column_names:
        dataset = dataset.add_column("source_id", [None] * len(dataset), feature=datasets.Value("string"))
    if not len(dataset):
        logger.warning("translate_mentions: the dataset is empty; nothing to translate.")
        return dataset, report
    options = {"batched": True, "load_from_cache_file": False}
    marked = dataset.map(_mark_batch, fn_kwargs={"markers": markers, "source_lang": source_lang}, **options)
    texts = list(dict.fromkeys(text for text in marked["marked_text"] if text is not None))
    translations = _translate_texts(texts, translator, source_lang, target_lang, batch_size, show_progress_bar)
    report.texts_translated = len(texts)
    marked = marked.add_column("translation", [translations.get(text) for text in marked["marked_text"]])
    projected = marked.map(_project_batch, fn_kwargs={"markers": markers, "target_lang": target_lang}, **options)
    report.dropped.update(reason for reason in projected["drop_reason"] if reason)
    kept = projected.filter(lambda reasons: [r is None for r in reasons], input_columns="drop_reason", **options)
    kept = kept.remove_columns(["marked_text", "translation", "drop_reason"]).cast(dataset.features)
    report.translated = len(kept)
    report.log(source_lang, target_lang)
    return kept, report


__all__ = [
    "DROP_REASONS",
    "MarkerError",
    "Seq2SeqTranslator",
    "TranslationReport",
    "Translator",
    "mark_mention",
    "translate_mentions",
    "unmark_mention",
]
