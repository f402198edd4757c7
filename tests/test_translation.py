"""Span-preserving translation of mention rows with deterministic word-by-word translators written for the tests."""

import re
from pathlib import Path

import datasets
import pytest

from modeling_entity_typing.crossc.distant_supervision import (
    MENTION_FEATURES,
    load_entity_linked,
    load_kb,
    mine_positive_groups,
)
from modeling_entity_typing.crossc.translation import (
    MarkerError,
    Seq2SeqTranslator,
    Translator,
    mark_mention,
    translate_mentions,
    unmark_mention,
)


SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "data" / "crossc_sample"
EN_ZH = {
    "paris": "巴黎", "france": "法国", "berlin": "柏林", "germany": "德国", "london": "伦敦", "united": "联合",
    "kingdom": "王国", "is": "是", "the": "", "a": "", "capital": "首都", "of": "的", "city": "城市", "in": "在",
    "lives": "住", "she": "她", "and": "和", ".": "。", ",": "，",
}  # fmt: skip
TOKEN = re.compile(r"\[\[|\]\]|\w+|[^\w\s]")


class DictionaryTranslator:
    """en -> zh word by word (unknown words kept), markers kept; Chinese output without spaces unless `spaced`."""

    def __init__(self, spaced: bool = False):
        self.spaced, self.calls = spaced, []

    def words(self, text: str) -> str:
        words = [token if token in ("[[", "]]") else EN_ZH.get(token.lower(), token) for token in TOKEN.findall(text)]
        return (" " if self.spaced else "").join(word for word in words if word)

    def translate(self, texts: list[str], source_lang: str, target_lang: str) -> list[str]:
        assert (source_lang, target_lang) == ("en", "zh")
        self.calls.append(list(texts))
        return [self.words(text) for text in texts]


class CorruptingTranslator(DictionaryTranslator):
    """Damages the markers of the translation of any text containing one of the chosen words."""

    CORRUPT = {
        "Berlin": lambda out: out.replace("[[", "").replace("]]", ""),  # markers lost
        "London": lambda out: out + out,  # sentence repeated: markers duplicated
        "Tokyo": lambda out: out.replace("[[", "<o>").replace("]]", "[[").replace("<o>", "]]"),  # swapped
        "Rome": lambda out: re.sub(r"\[\[.*\]\]", "[[ ]]", out),  # mention lost between the markers
    }

    def translate(self, texts, source_lang, target_lang):
        outputs = super().translate(texts, source_lang, target_lang)
        for word, corrupt in self.CORRUPT.items():
            outputs = [corrupt(out) if word in text else out for text, out in zip(texts, outputs)]
        return outputs


def rows(*examples) -> datasets.Dataset:
    """Mention rows from (id, text, mention, lang) tuples, the span at the mention's first occurrence."""
    records = []
    for id_, text, mention, lang in examples:
        start = text.index(mention)
        records.append(
            {"id": id_, "text": text, "start": start, "end": start + len(mention), "lang": lang, "entity": mention}
            | {"group_id": f"pair:g:{mention}", "rule": "pair", "source_id": None}
        )
    return datasets.Dataset.from_list(records, features=MENTION_FEATURES)


@pytest.mark.parametrize(
    "translated, expected",
    [
        ("[[巴黎]]很美", ("巴黎很美", 0, 2)),
        ("在 [[ 巴黎 ]] 住", ("在巴黎住", 1, 3)),
        ("我爱 [[Paris]] 的秋天", ("我爱Paris的秋天", 2, 7)),
        ("in [[ Paris ]] today", ("in Paris today", 3, 8)),
        ("in[[Paris]]today", ("inParistoday", 2, 7)),
        ("visit [[Paris]].", ("visit Paris.", 6, 11)),
        ("  [[Paris]]", ("Paris", 0, 5)),
    ],
)
def test_unmark_mention_handles_marker_whitespace(translated, expected):
    text, start, end = unmark_mention(translated)
    assert (text, start, end) == expected and "[[" not in text and "]]" not in text


@pytest.mark.parametrize(
    "translated, reason",
    [
        ("巴黎很美", "markers_missing"),
        ("[[巴黎很美", "markers_missing"),
        ("[[巴黎]]和[[巴黎]]", "markers_duplicated"),
        ("]]巴黎[[很美", "markers_reordered"),
        ("[[ ]]很美", "empty_mention"),
        ("[[]]很美", "empty_mention"),
    ],
)
def test_unmark_mention_reasons(translated, reason):
    with pytest.raises(MarkerError) as caught:
        unmark_mention(translated)
    assert caught.value.reason == reason


def test_mark_then_unmark_is_identity_with_custom_markers():
    text = "She lives in Paris."
    marked = mark_mention(text, 13, 18, ("<m>", "</m>"))
    assert marked == "She lives in <m>Paris</m>." and unmark_mention(marked, ("<m>", "</m>")) == (text, 13, 18)


@pytest.mark.parametrize("spaced", [False, True])
def test_translate_mentions_exact_spans_and_links(spaced):
    data = rows(
        ("s1", "Paris is the capital of France.", "Paris", "en"),
        ("s2", "Paris is the capital of France.", "France", "en"),
        ("s3", "She lives in Berlin, Germany.", "Germany", "en"),
    )
    translator = DictionaryTranslator(spaced=spaced)
    translated, report = translate_mentions(data, translator, "en", "zh")
    expected = {"s1": "巴黎", "s2": "法国", "s3": "德国"}
    assert translated["id"] == ["s1@zh", "s2@zh", "s3@zh"] and translated["source_id"] == ["s1", "s2", "s3"]
    for row in translated:
        assert row["text"][row["start"] : row["end"]] == expected[row["source_id"]] and row["lang"] == "zh"
        assert row["group_id"] == f"pair:g:{row['entity']}" and row["rule"] == "pair"
    if not spaced:
        assert translated[0]["text"] == "巴黎是首都的法国。" and translated[2]["text"] == "她住在柏林，德国。"
    else:  # whitespace at the markers is dropped next to Chinese characters, the rest is the translator's
        assert translated[0]["text"].startswith("巴黎是 ") and translated[2]["text"].endswith(" ，德国。")
    assert report.to_dict() == {"rows": 3, "translated": 3, "texts_translated": 3, "dropped": {}}
    assert translated.features == data.features


def test_each_distinct_marked_sentence_is_translated_once():
    data = rows(*[(f"s{i}", "She lives in Paris.", "Paris", "en") for i in range(5)])
    translator = DictionaryTranslator()
    translated, report = translate_mentions(data, translator, "en", "zh", batch_size=2)
    assert translator.calls == [["She lives in [[Paris]]."]]
    assert len(set(translated["id"])) == 5 and set(translated["text"]) == {"她住在巴黎。"}
    assert report.texts_translated == 1 and report.translated == 5


def test_lost_markers_are_dropped_and_counted_per_reason(caplog):
    data = rows(
        ("ok", "Paris is the capital of France.", "Paris", "en"),
        ("lost", "Berlin is the capital of Germany.", "Berlin", "en"),
        ("twice", "London is a city.", "London", "en"),
        ("swapped", "Tokyo is a city.", "Tokyo", "en"),
        ("empty", "Rome is a city.", "Rome", "en"),
        ("chinese", "巴黎是法国的首都。", "巴黎", "zh"),
        ("marked", "A [[wiki]] link to Paris.", "Paris", "en"),
    )
    translator = CorruptingTranslator()
    with caplog.at_level("WARNING", logger="modeling_entity_typing.crossc.translation"):
        translated, report = translate_mentions(data, translator, "en", "zh")
    assert translated["source_id"] == ["ok"] and translated[0]["text"][0:2] == "巴黎"
    assert dict(report.dropped) == {
        "markers_missing": 1,
        "markers_duplicated": 1,
        "markers_reordered": 1,
        "empty_mention": 1,
        "not_source_language": 1,
        "markers_in_source": 1,
    }
    assert report.rows == 7 and report.translated == 1 and report.texts_translated == 5
    assert "markers_reordered" in caplog.text and "Translated 1 of 7" in caplog.text


def test_mined_sample_translates_with_exact_spans():
    corpus = load_entity_linked(SAMPLE / "corpus.jsonl")
    mined, _ = mine_positive_groups(corpus, load_kb(SAMPLE / "kb.tsv"))
    english = mined.filter(lambda lang: lang == "en", input_columns="lang")
    translator = DictionaryTranslator()
    translated, report = translate_mentions(mined, translator, "en", "zh", batch_size=16)
    assert report.dropped == {"not_source_language": len(mined) - len(english)}
    assert len(translated) == len(english) and translated["source_id"] == english["id"]
    for source, row in zip(english, translated):
        mention = source["text"][source["start"] : source["end"]]
        assert row["text"][row["start"] : row["end"]] == translator.words(mention)
        assert (row["group_id"], row["entity"], row["id"]) == (
            source["group_id"],
            source["entity"],
            source["id"] + "@zh",
        )


def test_bad_translator_output_and_arguments_raise():
    data = rows(("s1", "Paris is nice.", "Paris", "en"))

    class Short:
        def translate(self, texts, source_lang, target_lang):
            return []

    with pytest.raises(ValueError, match="one string per text"):
        translate_mentions(data, Short(), "en", "zh")
    with pytest.raises(TypeError, match="translate"):
        translate_mentions(data, object(), "en", "zh")
    with pytest.raises(ValueError, match="two different languages"):
        translate_mentions(data, DictionaryTranslator(), "en", "en")
    with pytest.raises(ValueError, match="markers"):
        translate_mentions(data, DictionaryTranslator(), "en", "zh", markers=("|", "|"))
    with pytest.raises(TypeError, match="materialise"):
        translate_mentions(data.to_iterable_dataset(), DictionaryTranslator(), "en", "zh")
    empty, report = translate_mentions(data.select([]), DictionaryTranslator(), "en", "zh")
    assert len(empty) == 0 and report.to_dict() == {"rows": 0, "translated": 0, "texts_translated": 0, "dropped": {}}
    with pytest.raises(ValueError, match="lacks the columns"):
        translate_mentions(data.remove_columns("lang"), DictionaryTranslator(), "en", "zh")


def test_seq2seq_translator_validates_and_fails_clearly_offline():
    assert isinstance(DictionaryTranslator(), Translator)
    with pytest.raises(ValueError, match="model_name_or_path"):
        Seq2SeqTranslator("")
    with pytest.raises(ValueError, match="batch_size"):
        Seq2SeqTranslator("Helsinki-NLP/opus-mt-en-zh", batch_size=0)
    opus = Seq2SeqTranslator("Helsinki-NLP/opus-mt-en-zh")
    assert opus.language_pair == ("en", "zh") and isinstance(opus, Translator)
    with pytest.raises(ValueError, match="translates en -> zh"):
        opus.translate(["Paris is nice."], "en", "de")
    missing = Seq2SeqTranslator("no-such-org/no-such-translation-model")  # the test suite runs with HF_HUB_OFFLINE=1
    with pytest.raises(OSError, match="Could not load the translation model 'no-such-org/no-such-translation-model'"):
        missing.translate(["Paris is nice."], "en", "zh")
