"""Broken data files, written by each test into tmp_path: every one fails with `file:line` and the fix, never with a
bare decoder error and never by losing data silently."""

import gzip
import json
import logging
import re

import pytest

from modeling_entity_typing.data.mention_data import MentionDataError, detect_format, load_mentions
from modeling_entity_typing.fivefine.label_phrases import read_label_phrases


RECORD = {"text": "Ada Lovelace wrote", "start": 0, "end": 12, "labels": ["/person"]}
UFET = {
    "left_context_token": ["Yesterday"],
    "mention_span": "Ada",
    "right_context_token": ["wrote"],
    "y_str": ["person"],
}


def jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def test_invalid_utf8_names_line_and_byte(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        jsonl(RECORD).encode()
        + json.dumps({**RECORD, "text": "Ad\xe9 wrote"}, ensure_ascii=False).encode("latin-1")
        + b"\n"
    )
    with pytest.raises(
        MentionDataError, match=r"latin1\.jsonl:2: not valid UTF-8 .*byte b'\\xe9'.*re-encode the file"
    ):
        load_mentions(path, "mentions")


def test_lone_surrogate_escape_names_line_and_key(tmp_path):
    path = tmp_path / "surrogate.jsonl"
    path.write_text(jsonl(RECORD) + '{"text": "Ad\\ud800 wrote", "start": 0, "end": 3, "labels": ["/person"]}\n')
    with pytest.raises(
        MentionDataError, match=r"surrogate\.jsonl:2: 'text' holds the lone surrogate \\ud800 at character 2"
    ):
        load_mentions(path, "mentions")
    path.write_text(jsonl(RECORD) + '{"text": "Ada", "start": 0, "end": 3, "labels": ["/per\\udc00son"]}\n')
    with pytest.raises(
        MentionDataError, match=r"surrogate\.jsonl:2: 'labels'\[0\] holds the lone surrogate \\udc00 at"
    ):
        load_mentions(path)  # with format detection too
    path.write_text('{"text": "\\ud83d\\ude00 Ada", "start": 2, "end": 5, "labels": ["/person"]}\n')
    assert load_mentions(path, "mentions")[0]["text"] == "\U0001f600 Ada"  # a surrogate pair is one character


def test_truncated_gzip_says_where_it_was_cut_after_streaming_what_it_could(tmp_path):
    path = tmp_path / "weak.jsonl.gz"
    lines = [json.dumps({**RECORD, "id": f"r{index}", "extra_labels": [f"/x{index}"]}) for index in range(3000)]
    data = gzip.compress("\n".join(lines).encode() + b"\n")
    path.write_bytes(data[: len(data) // 2])
    streamed = []
    with pytest.raises(
        MentionDataError, match=r"weak\.jsonl\.gz:(\d+): the gzip stream ends early.*fetch it again"
    ) as error:
        for record in load_mentions(path, "mentions", streaming=True):
            streamed.append(record)
    assert 0 < len(streamed) < len(lines)
    assert [record["id"] for record in streamed] == [f"r{index}" for index in range(len(streamed))]
    assert f"{len(streamed)} lines were read before it" in str(error.value)
    with pytest.raises(MentionDataError, match="the gzip stream ends early"):
        load_mentions(path, "mentions")


def test_plain_file_named_gz(tmp_path):
    path = tmp_path / "train.jsonl.gz"
    path.write_text(jsonl(RECORD))
    with pytest.raises(
        MentionDataError, match=r"train\.jsonl\.gz:1: .*not gzip-compressed.*rename it to 'train\.jsonl'"
    ):
        load_mentions(path, "mentions")
    with pytest.raises(MentionDataError, match="not gzip-compressed"):
        detect_format(path)


def test_gzip_file_not_named_gz(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(gzip.compress(jsonl(RECORD).encode()))
    with pytest.raises(MentionDataError, match=r"train\.jsonl:1: .*gzip-compressed but its name.*'train\.jsonl\.gz'"):
        load_mentions(path, "mentions")


@pytest.mark.parametrize(
    "content, fmt",
    [
        (jsonl(RECORD), "mentions"),
        (jsonl(UFET), "ufet"),
        ("0\t2\tAda Lovelace wrote\t/person\r\n", "tsv"),
        ("Ada\tB-person\r\nLovelace\tI-person\r\n\r\n", "bio"),  # Windows line ends reach no label either
    ],
)
def test_byte_order_mark_is_skipped_by_detection_and_readers(tmp_path, content, fmt):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + content.encode())
    assert detect_format(path) == fmt
    record = load_mentions(path)[0]
    assert not record["text"].startswith("\ufeff")
    assert record["text"][record["start"] : record["end"]] in ("Ada Lovelace", "Ada")
    assert record["labels"] == (["person"] if fmt == "ufet" else ["/person"])


@pytest.mark.parametrize(
    "record, fmt, message",
    [
        ({**RECORD, "labels": [" "]}, "mentions", r":1: labels\[0\] = ' ' is not a label"),
        ({**RECORD, "labels": ["/person", "/person "]}, "mentions", r":1: labels\[1\] = '/person ' has leading or"),
        ({**RECORD, "extra_labels": [""]}, "mentions", r":1: extra_labels\[0\] = '' is not a label"),
        ({**UFET, "y_str": ["\t"]}, "ufet", r":1: y_str\[0\] = '\\t' is not a label"),
    ],
)
def test_whitespace_label(tmp_path, record, fmt, message):
    path = tmp_path / "labels.jsonl"
    path.write_text(jsonl(record))
    with pytest.raises(MentionDataError, match=message + ".*(remove|name the type)"):
        load_mentions(path, fmt)


def test_misspelt_key_is_an_error_naming_key_known_keys_and_line(tmp_path):
    path = tmp_path / "prompted.jsonl"
    path.write_text(jsonl(RECORD, {**RECORD, "extra_label": ["/writer"]}))
    with pytest.raises(
        MentionDataError,
        match=r"prompted\.jsonl:2: unknown key 'extra_label' \(did you mean 'extra_labels'\?\) in a 'mentions' "
        r"record, whose known keys are \['text', 'start', 'end', 'labels', 'id', 'extra_labels'\]; its value would "
        r"be lost",
    ):
        load_mentions(path, "mentions")


@pytest.mark.parametrize(
    "record, fmt, key",
    [
        ({**UFET, "y_strs": ["x"]}, "ufet", "'y_strs' (did you mean 'y_str'?)"),
        (
            {"tokens": ["Ada"], "mentions": [{"start": 0, "end": 1, "labels": ["/p"], "label": ["/q"]}]},
            "afet",
            "'label'",
        ),
        (
            {"left_context": [], "word": "Ada", "right_context": [], "y_category": ["/p"], "y_categories": []},
            "ali",
            "'y_categories' (did you mean 'y_category'?)",
        ),
    ],
)
def test_unknown_keys_in_every_json_format(tmp_path, record, fmt, key):
    path = tmp_path / "data.json"
    path.write_text(jsonl(record))
    with pytest.raises(
        MentionDataError,
        match=rf"data\.json:1.*: unknown key {re.escape(key)}",
    ):
        load_mentions(path, fmt)


def test_unknown_keys_can_be_read_past_with_a_warning(tmp_path, caplog):
    path = tmp_path / "meta.jsonl"
    path.write_text(jsonl({**RECORD, "source": "wiki"}, {**RECORD, "source": "news"}))
    with caplog.at_level(logging.WARNING, logger="modeling_entity_typing.data.mention_data"):
        records = load_mentions(path, "mentions", unknown_keys="warn")
    assert len(records) == 2
    warnings = [record.getMessage() for record in caplog.records if "unknown key" in record.getMessage()]
    assert len(warnings) == 1 and "meta.jsonl:1: ignoring unknown key 'source'" in warnings[0]
    with pytest.raises(ValueError, match=r"`unknown_keys` must be 'error' or 'warn', got 'ignore'"):
        load_mentions(path, "mentions", unknown_keys="ignore")


@pytest.mark.parametrize("value", [0, "Yesterday", None, [1]])
def test_ufet_context_that_is_not_a_token_list(tmp_path, value):
    path = tmp_path / "ufet.json"
    path.write_text(jsonl({**UFET, "left_context_token": value}))
    with pytest.raises(MentionDataError, match=r"ufet\.json:1: 'left_context_token' must be a list of token strings"):
        load_mentions(path, "ufet")


def test_misspelt_required_key_is_pointed_at(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(jsonl({"text": "Ada wrote", "start": 0, "end": 3, "lables": ["/person"]}))
    with pytest.raises(
        MentionDataError, match=r"m\.jsonl:1: missing key 'labels' .*is 'lables' a misspelling of it\?"
    ):
        load_mentions(path, "mentions")


@pytest.mark.parametrize("tag", ["B-", "I-"])
def test_bare_bio_prefix_is_not_the_label_slash(tmp_path, tag):
    path = tmp_path / "ner.txt"
    path.write_text(f"Ann\tB-person\nmet\tO\n\nBo\tO\nLee\t{tag}\n")
    with pytest.raises(
        MentionDataError, match=rf"ner\.txt:5: tag '{tag}' has no type after its prefix; write '{tag}<type>'"
    ):
        load_mentions(path, "bio")


@pytest.mark.parametrize("tag", ["-actor", "person-", "_"])
def test_few_nerd_tag_with_an_empty_part(tmp_path, tag):
    path = tmp_path / "ner.txt"
    path.write_text(f"Ann\t{tag}\n")
    with pytest.raises(MentionDataError, match=rf"ner\.txt:1: tag '{tag}' has an empty type name"):
        load_mentions(path, "bio")


def test_label_map_giving_no_label(tmp_path):
    path = tmp_path / "ner.txt"
    path.write_text("Ann\tB-PER\n")
    with pytest.raises(MentionDataError, match=r"ner\.txt:1: `label_map` turned tag type 'PER' into ''"):
        load_mentions(path, "bio", label_map=lambda kind: "")


@pytest.mark.parametrize(
    "record, fmt, mention",
    [
        ({**UFET, "left_context_token": [""], "mention_span": "The award"}, "ufet", "The award"),
        (
            {"left_context": [""], "word": "Intel", "right_context": ["said"], "y_category": ["/ORGANIZATION"]},
            "ali",
            "Intel",
        ),
    ],
)
def test_empty_context_token_keeps_the_mention_span_right(tmp_path, record, fmt, mention):
    """The released files write an empty left context as `[""]`; the span must still be the mention."""
    path = tmp_path / "data.json"
    path.write_text(jsonl(record))
    loaded = load_mentions(path, fmt)[0]
    assert loaded["text"][loaded["start"] : loaded["end"]] == mention


def test_label_phrase_file_with_byte_order_mark_and_bad_bytes(tmp_path):
    """A spreadsheet's BOM used to glue itself to the first label, which then matched no label and silently fell
    back to the default phrase."""
    path = tmp_path / "phrases.tsv"
    path.write_bytes(b"\xef\xbb\xbf/person/artist\tartist painter\r\n/location\tplace\r\n")
    assert read_label_phrases(path) == {"/person/artist": "artist painter", "/location": "place"}
    path.write_bytes(b"/person/artist\tartist\n/location\tpl\xe4ce\n")
    with pytest.raises(MentionDataError, match=r"phrases\.tsv:2: not valid UTF-8"):
        read_label_phrases(path)


# ---------------------------------------------------------------------------------------------------------------------
# JSON that parses badly, or parses but loses data: nesting, bad first lines, repeated keys and ids

DATA_LOGGER = "modeling_entity_typing.data.mention_data"


@pytest.mark.parametrize("line", [1, 2])
def test_json_nested_too_deep_names_the_line(tmp_path, line):
    path = tmp_path / "deep.jsonl"
    deep = json.dumps({**RECORD, "id": "x"})[:-1] + ', "extra": ' + "[" * 50_000 + "]" * 50_000 + "}\n"
    path.write_text(jsonl(RECORD) * (line - 1) + deep)
    for fmt in ("mentions", None):
        with pytest.raises(MentionDataError, match=rf"deep\.jsonl:{line}: the JSON is nested too deep to read"):
            load_mentions(path, fmt)


def test_bad_json_on_the_first_line_says_so_rather_than_the_format_is_unknown(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "Ada", "start": 0, "end": 3, "labels": ["/person"],}\n' + jsonl(RECORD))
    message = r"bad\.jsonl:1: not valid JSON \(Expecting property name enclosed in double quotes at column 61\)"
    with pytest.raises(MentionDataError, match=message):
        detect_format(path)
    with pytest.raises(MentionDataError, match=message):
        load_mentions(path)
    path.write_text("this is no data file at all\n")  # neither JSON nor tab-separated: the format is unknown
    with pytest.raises(MentionDataError, match=r"bad\.jsonl:1: cannot tell the format of this file"):
        load_mentions(path)
    path.write_text("[\tO\nParis\tB-location\n")  # a CoNLL file whose first token is a bracket stays CoNLL
    assert detect_format(path) == "bio"


@pytest.mark.parametrize(
    "line, fmt, key",
    [
        ('{"text": "Ada wrote", "start": 0, "end": 3, "labels": ["/person"], "labels": []}', "mentions", "labels"),
        ('{"tokens": ["Ada"], "mentions": [{"start": 0, "end": 1, "labels": ["/a"], "start": 0}]}', "afet", "start"),
    ],
)
def test_a_key_given_twice_in_one_object_is_an_error(tmp_path, line, fmt, key):
    path = tmp_path / "twice.jsonl"
    sound = {"mentions": RECORD, "afet": {"tokens": ["Ada"], "mentions": []}}[fmt]
    path.write_text(jsonl(sound) + line + "\n")
    with pytest.raises(
        MentionDataError, match=rf"twice\.jsonl:2: the key '{key}' appears twice in one JSON object; only the last"
    ):
        load_mentions(path, fmt)


def test_ids_used_twice_in_a_file_are_a_warning_naming_the_lines(tmp_path, caplog):
    path = tmp_path / "ids.jsonl"
    path.write_text(
        jsonl({**RECORD, "id": "a"}, {**RECORD, "id": "b"}, {**RECORD, "id": "a"}, RECORD, {**RECORD, "id": "a"})
        + jsonl({**RECORD, "id": "4"})  # line 6 repeats the id line 4 got from its line number
    )
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        records = load_mentions(path)
    assert records["id"] == ["a", "b", "a", "4", "a", "4"]  # read, not refused: released files repeat ids
    warnings = [record.getMessage() for record in caplog.records if record.name == DATA_LOGGER]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"{path}: 2 record id(s) are used by more than one record: 'a' on lines 1, 3, 5; '4' on lines 4, 6. "
    )
    caplog.clear()
    other = tmp_path / "other.jsonl"
    other.write_text(jsonl({**RECORD, "id": "a"}, RECORD))
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        list(load_mentions(path, streaming=True))  # a stream keeps no ids
        assert load_mentions([other, other])["id"] == ["a", "2", "a", "2"]  # ids are checked per file
    assert not [record for record in caplog.records if record.name == DATA_LOGGER]


def test_a_warning_about_many_repeated_ids_lists_ten(tmp_path, caplog):
    path = tmp_path / "ufet.json"
    path.write_text(jsonl(*[{**UFET, "annot_id": f"m{index % 12}"} for index in range(24)]))
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        load_mentions(path, "ufet")
    (warning,) = [record.getMessage() for record in caplog.records if record.name == DATA_LOGGER]
    assert "12 record id(s) are used by more than one record: 'm0' on lines 1, 13;" in warning
    assert "'m9' on lines 10, 22; and 2 more." in warning and "'m10'" not in warning


def test_afet_ids_tell_documents_apart(tmp_path, caplog):
    """AFET's `senid` numbers the sentences of one document (`fileid`); ids made from it alone repeated."""
    sentence = {"tokens": ["Ada", "wrote"], "mentions": [{"start": 0, "end": 1, "labels": ["/person"]}]}
    path = tmp_path / "afet.json"
    path.write_text(jsonl({**sentence, "senid": 0, "fileid": "a"}, {**sentence, "senid": 0, "fileid": "b"}))
    with caplog.at_level(logging.WARNING, logger=DATA_LOGGER):
        assert load_mentions(path, "afet")["id"] == ["a/0-0", "b/0-0"]
    assert not [record for record in caplog.records if record.name == DATA_LOGGER]
