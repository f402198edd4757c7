"""Readers of every benchmark format: on small fixtures each test writes (so a clone without ../shared tests every
reader), on slices of the real files in ../shared/data, and on broken input (more in test_data_errors.py)."""

import gzip
import itertools
import json
from pathlib import Path

import pytest

from modeling_entity_typing.data.mention_data import (
    MentionDataError,
    detect_format,
    few_nerd_label,
    iter_mentions,
    load_mentions,
    read_label_list,
    restrict_to_labels,
)


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def head(source: Path, target: Path, lines: int) -> Path:
    """The first `lines` lines of a real data file, copied into the test's temporary directory."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8") as handle:
        target.write_text("".join(itertools.islice(handle, lines)), encoding="utf-8")
    return target


def mention(record: dict) -> str:
    return record["text"][record["start"] : record["end"]]


@pytest.mark.needs_shared_data
def test_ufet_slice(tmp_path):
    path = head(DATA / "ufet" / "train.json", tmp_path / "ufet.json", 5)
    records = load_mentions(path)
    assert detect_format(path) == "ufet" and len(records) == 5
    first = json.loads(path.read_text().splitlines()[0])
    assert mention(records[0]) == first["mention_span"] == "Web users"
    assert records[0]["labels"] == first["y_str"]
    assert records[0]["text"].startswith(" ".join(first["left_context_token"]) + " Web users to locate")


@pytest.mark.needs_shared_data
def test_ali_slice_reads_right_context_from_tokens_by_default(tmp_path):
    source = DATA / "fivefine" / "alifet" / "ontonotes" / "onto_train_fewshot5_0.json"
    path = head(source, tmp_path / "onto.json", 3)
    raw = json.loads(path.read_text().splitlines()[1])  # the record SOURCE.md shows with the copied right context
    fixed, buggy = load_mentions(path)[1], load_mentions(path, right_context="text")[1]
    assert mention(fixed) == raw["word"] and fixed["labels"] == raw["y_category"]
    assert fixed["text"].endswith(raw["word"] + " " + " ".join(raw["right_context"]))
    assert buggy["text"].endswith(raw["word"] + " " + raw["right_context_text"])
    assert fixed["text"] != buggy["text"]


@pytest.mark.needs_shared_data
def test_afet_slice_gives_one_record_per_mention(tmp_path):
    path = head(DATA / "ontonotes" / "fgec-afet" / "test.json", tmp_path / "afet.json", 2)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    records = load_mentions(path)
    assert len(records) == sum(len(line["mentions"]) for line in lines)
    first = lines[0]["mentions"][0]
    assert mention(records[0]) == " ".join(lines[0]["tokens"][first["start"] : first["end"]]) == "Valley Federal"
    assert records[0]["labels"] == first["labels"]


@pytest.mark.needs_shared_data
def test_gzipped_afet_streams(tmp_path):
    records = list(itertools.islice(iter_mentions(DATA / "bbn" / "oset-afet" / "test.json.gz", "afet"), 3))
    assert mention(records[0]) == "Pierre Vinken" and records[0]["labels"] == ["/PERSON"]


@pytest.mark.needs_shared_data
def test_tsv_slice(tmp_path):
    path = head(DATA / "ontonotes" / "prompt-typing" / "test.txt", tmp_path / "test.txt", 4)
    records = load_mentions(path)
    assert detect_format(path) == "tsv"
    assert mention(records[1]) == "Valley Federal" and records[1]["labels"] == ["/organization/company"]


@pytest.mark.needs_shared_data
def test_few_nerd_bio_slice(tmp_path):
    path = head(DATA / "few_nerd" / "structshot-inter-test" / "big_test.txt.gz", tmp_path / "bio.txt", 40)
    records = load_mentions(path, "bio")
    assert [mention(records[i]) for i in range(3)] == [
        "Commonwealth Games",
        "Goodwill Games",
        "San Diego Harbor Police Department",
    ]
    assert records[0]["labels"] == ["/event/sportsevent"]
    assert records[2]["labels"] == ["/organization/government_governmentagency"]


@pytest.mark.needs_shared_data
def test_few_nerd_labels_match_fivefine_vocabulary():
    vocabulary = set((DATA / "fivefine" / "alifet" / "fewnerd" / "fewnerd_type_vocab.txt").read_text().split())
    official = [line for line in (DATA / "few_nerd" / "thunlp" / "labels.txt").read_text().split() if line != "O"]
    assert {few_nerd_label(tag) for tag in official} == vocabulary


def write_jsonl(path: Path, *records: dict) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


UFET_LINES = [
    {
        "annot_id": "a1",
        "left_context_token": ["Yesterday", ","],
        "mention_span": "Web users",
        "right_context_token": ["searched", "."],
        "y_str": ["person", "user"],
    },
    {
        "annot_id": "a2",
        "left_context_token": [],
        "mention_span": "Paris",
        "right_context_token": ["is", "big"],
        "y_str": ["city"],
    },
]
ALI_LINE = {
    "ex_id": "train_1",
    "left_context": ["In", "1970"],
    "word": "Intel",
    "right_context": ["grew", "."],
    "left_context_text": "In 1970",
    "right_context_text": "In 1970",
    "mention_as_list": ["Intel"],
    "y_category": ["/organization/company"],
    "fileid": "f",
}


def test_ufet_fixture(tmp_path):
    path = write_jsonl(tmp_path / "ufet.json", *UFET_LINES)
    records = load_mentions(path)
    assert detect_format(path) == "ufet" and len(records) == 2
    assert records[0]["text"] == "Yesterday , Web users searched ."
    assert mention(records[0]) == "Web users" and records[0]["labels"] == ["person", "user"]
    assert records[0]["id"] == "a1" and mention(records[1]) == "Paris" and records[1]["start"] == 0


def test_ufet_extra_labels_fixture(tmp_path):
    path = write_jsonl(tmp_path / "weak.json", {**UFET_LINES[1], "extra_labels": ["location"]})
    assert load_mentions(path, "ufet")[0]["extra_labels"] == ["location"]


def test_ali_fixture_reads_right_context_from_tokens_by_default(tmp_path):
    path = write_jsonl(tmp_path / "onto.json", ALI_LINE)
    fixed, buggy = load_mentions(path)[0], load_mentions(path, right_context="text")[0]
    assert detect_format(path) == "ali"
    assert fixed["text"] == "In 1970 Intel grew ." and mention(fixed) == "Intel"
    assert fixed["labels"] == ["/organization/company"] and fixed["id"] == "train_1"
    assert buggy["text"] == "In 1970 Intel In 1970"  # the released train files' copied right context


def test_afet_fixture_gives_one_record_per_mention(tmp_path):
    path = write_jsonl(
        tmp_path / "afet.json",
        {
            "senid": 7,
            "fileid": "f",
            "tokens": ["Valley", "Federal", "sued", "Ann", "Lee", "."],
            "mentions": [
                {"start": 0, "end": 2, "labels": ["/organization"]},
                {"start": 3, "end": 5, "labels": ["/person"]},
            ],
        },
        {"senid": 8, "fileid": "f", "tokens": ["Nothing", "."], "mentions": []},
    )
    records = load_mentions(path)
    assert detect_format(path) == "afet"
    assert [mention(r) for r in records] == ["Valley Federal", "Ann Lee"]
    assert [r["labels"] for r in records] == [["/organization"], ["/person"]]
    assert [r["id"] for r in records] == ["f/7-0", "f/7-1"]  # senid counts the sentences of one fileid


def test_tsv_fixture(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("0\t2\tValley Federal sued .\t/organization/company\n\n2\t3\tThey met Ann .\t/person\n")
    records = load_mentions(path)
    assert detect_format(path) == "tsv"
    assert [mention(r) for r in records] == ["Valley Federal", "Ann"]
    assert records[1]["labels"] == ["/person"] and records[1]["id"] == "3"


def test_bio_fixture_with_b_and_i_tags(tmp_path):
    path = tmp_path / "bio.txt"
    path.write_text("The\tO\nCommonwealth\tB-event-sportsevent\nGames\tI-event-sportsevent\n\nSan\tB-location-GPE\n")
    records = load_mentions(path)
    assert detect_format(path) == "bio"
    assert [mention(r) for r in records] == ["Commonwealth Games", "San"]
    assert [r["labels"] for r in records] == [["/event/sportsevent"], ["/location/GPE"]]
    assert [r["id"] for r in records] == ["1-0", "5-0"]


def test_gzipped_fixture_streams_and_equals_in_memory(tmp_path):
    path = tmp_path / "test.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in UFET_LINES * 3))
    assert detect_format(path) == "ufet"
    first = next(iter_mentions(path, "ufet"))
    assert mention(first) == "Web users"
    assert list(load_mentions(path, streaming=True)) == load_mentions(path).to_list()
    assert len(load_mentions([path, path])) == 12


def test_io_tags_and_adjacent_mentions(tmp_path):
    path = tmp_path / "io.txt"
    path.write_text("Ann\tperson-actor\nLee\tperson-actor\nmet\tO\nBo\tB-person_athlete\nCy\tB-person_athlete\n\n")
    records = load_mentions(path, "bio")
    assert [mention(r) for r in records] == ["Ann Lee", "Bo", "Cy"]
    assert records[0]["labels"] == ["/person/actor"]


def test_own_format_and_extra_labels(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(
        json.dumps(
            {"text": "Ada Lovelace wrote", "start": 0, "end": 12, "labels": ["person"], "extra_labels": ["writer"]}
        )
        + "\n\n"
    )
    record = load_mentions(path)[0]
    assert mention(record) == "Ada Lovelace" and record["extra_labels"] == ["writer"] and record["id"] == "1"


@pytest.mark.needs_shared_data
def test_streaming_equals_in_memory(tmp_path):
    path = head(DATA / "ufet" / "dev.json", tmp_path / "dev.json", 20)
    assert list(load_mentions(path, streaming=True)) == load_mentions(path).to_list()


@pytest.mark.parametrize(
    "content, fmt, message",
    [
        (
            '{"text": "a b", "start": 0, "end": 1, "labels": ["x"]}\n{"text": "a b", "start": 0\n',
            "mentions",
            r"bad\.jsonl:2: not valid JSON",
        ),
        ('{"text": "a b", "start": 2, "end": 9, "labels": ["x"]}\n', "mentions", r":1: span \(2, 9\) is not inside"),
        ('{"text": "a b", "start": 0, "end": 1, "labels": "x"}\n', "mentions", r":1: 'labels' must be list"),
        ('{"text": "a b", "start": 0, "end": 1}\n', "mentions", r":1: missing key 'labels'"),
        (
            '{"mention_span": "x", "y_str": ["a"]}\n{"mention_span": "", "y_str": ["a"]}\n',
            "ufet",
            r":2: 'mention_span' is blank",
        ),
        (
            '{"tokens": ["a"], "mentions": [{"start": 0, "end": 3, "labels": ["x"]}]}\n',
            "afet",
            r":1 \(mention 0\): token span \(0, 3\) is outside",
        ),
        ("0\t1\tA b\t/x\n0\tone\tA b\t/x\n", "tsv", r":2: start and end must be integers"),
        ("0\t1\tA b\n", "tsv", r":1: expected 4 tab-separated fields"),
        ("A\tB-x\nb c d\n", "bio", r":2: expected 'token<TAB>tag'"),
        ("[1, 2]\n", "mentions", r":1: expected a JSON object"),
    ],
)
def test_broken_input_names_file_and_line(tmp_path, content, fmt, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(MentionDataError, match=message):
        load_mentions(path, fmt)


def test_unknown_format_and_missing_file(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("just some words here\n")
    with pytest.raises(MentionDataError, match="cannot tell the format"):
        load_mentions(path)
    with pytest.raises(ValueError, match="Unknown data format 'xml'"):
        load_mentions(path, "xml")
    with pytest.raises(FileNotFoundError, match="No data file"):
        load_mentions(tmp_path / "missing.json", "ufet")


def test_restrict_to_labels_counts_everything_it_removes(tmp_path, caplog):
    path = tmp_path / "m.jsonl"
    rows = [("a", ["/person", "/person/x"]), ("b", ["/zoo"]), ("c", ["/person", "/zoo", "/zoo"])]
    path.write_text(
        "".join(json.dumps({"text": t, "start": 0, "end": 1, "labels": labels}) + "\n" for t, labels in rows)
    )
    restricted, report = restrict_to_labels(load_mentions(path), ["/person", "/person/x"], "train")
    assert restricted["labels"] == [["/person", "/person/x"], ["/person"]]
    assert restricted["text"] == ["a", "c"]
    assert report.records == 3 and report.records_dropped == 1 and report.labels_dropped == {"/zoo": 3}
    assert "3 labels outside the label set were removed (/zoo x3); 1 of 3 records" in caplog.text

    # a stream the same, counted as it is read (the caller logs the report once the stream is consumed)
    streamed, stream_report = restrict_to_labels(load_mentions(path, streaming=True), ["/person", "/person/x"])
    assert stream_report.records == 0
    assert [(record["text"], record["labels"]) for record in streamed] == list(
        zip(restricted["text"], restricted["labels"])
    )
    assert stream_report == report


def test_label_lists_keep_file_order_and_refuse_or_merge_repeats(tmp_path):
    path = tmp_path / "types.txt"
    path.write_bytes("\ufeffperson\t3\r\n\ncity\n person \nriver\n".encode())
    assert read_label_list(path) == ["person", "city", "river"]  # BOM, tab column, CRLF, blank lines, repeats merged
    with pytest.raises(MentionDataError, match=r"types.txt:4: 'person' is listed again \(first on line 1\)"):
        read_label_list(path, repeats="error")
    path.write_bytes(b"caf\xe9\n")
    with pytest.raises(MentionDataError, match=r"types.txt:1: not valid UTF-8"):
        read_label_list(path)


def test_streaming_reads_lazily(tmp_path):
    """A streamed file is read as it is consumed: a broken line far down is only met when reached."""
    path = tmp_path / "weak.jsonl"
    good = json.dumps({"text": "Ada wrote", "start": 0, "end": 3, "labels": ["person"]}) + "\n"
    path.write_text(good * 5 + "{broken\n")
    stream = iter(load_mentions(path, "mentions", streaming=True))
    assert [mention(next(stream)) for _ in range(5)] == ["Ada"] * 5
    with pytest.raises(MentionDataError, match=r"weak.jsonl:6: not valid JSON"):
        next(stream)
