"""Entity-linked corpus readers, the KB reader and Cross-C's positive-group rules, on the sample and broken input."""

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from modeling_entity_typing.crossc.distant_supervision import (
    LinkReport,
    detect_corpus_format,
    load_entity_linked,
    load_kb,
    mine_positive_groups,
)
from modeling_entity_typing.data.mention_data import MentionDataError


ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "examples" / "data" / "crossc_sample"
ERNIE = ROOT.parent / "shared" / "data" / "open_entity_ernie"


@pytest.fixture(scope="module")
def sample():
    return load_entity_linked(SAMPLE / "corpus.jsonl"), load_kb(SAMPLE / "kb.tsv")


@pytest.fixture(scope="module")
def mined(sample):
    return mine_positive_groups(*sample)


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def link(text: str, mention: str, entity: str, **extra) -> dict:
    return {"entity": entity, "start": text.index(mention), "end": text.index(mention) + len(mention), **extra}


# ------------------------------------------------------------------------------------------------ the sample
def test_sample_corpus_spans_and_languages(sample):
    corpus, kb = sample
    assert Counter(corpus["lang"]) == {"en": 36, "zh": 24} and len(kb) == 17
    surfaces = {
        (row["lang"], m["entity"], row["text"][m["start"] : m["end"]]) for row in corpus for m in row["mentions"]
    }
    assert {
        ("zh", "Q90", "巴黎"),
        ("zh", "E:mira_solberg", "米拉·索尔伯格"),
        ("en", "Q145", "United Kingdom"),
    } <= surfaces
    assert sum(len(m) for m in corpus["mentions"]) == 108
    # every entity has one surface form per language (the sample has no aliases except "Einstein", "Solberg")
    by_entity = Counter((lang, entity) for lang, entity, _ in surfaces)
    assert {key for key, count in by_entity.items() if count > 1} == {("en", "Q937"), ("en", "E:mira_solberg")}


def test_sample_rule_counts_are_the_designed_ones(mined):
    groups, report = mined
    pair, relation = report.rules["pair"], report.rules["relation"]
    assert (pair.groups, pair.mentions, pair.candidates, dict(pair.skipped)) == (
        30,
        79,
        27,
        {"pair_in_one_sentence": 12},
    )
    assert (relation.groups, relation.mentions, relation.candidates) == (6, 46, 8)
    assert dict(relation.skipped) == {"fewer_than_2_entities_in_corpus": 1, "fewer_than_2_sentences": 1}
    assert (report.sentences, report.mentions, report.sentences_without_links, report.kb_triples) == (60, 108, 2, 17)
    assert len(groups) == 79 + 46 and len(set(groups["id"])) == len(groups)
    assert set(groups["source_id"]) == {None}


def test_sample_groups_hold_the_right_mentions(mined, sample):
    groups, _ = mined
    members = {}
    for row in groups:
        members.setdefault(row["group_id"], []).append(
            (row["id"].split(":")[0], row["text"][row["start"] : row["end"]])
        )
    # Paris/France co-occur in en-0001, en-0002 (Paris twice there) and zh-0001
    assert members["pair:Q142|Q90:Q90"] == [
        ("en-0001", "Paris"),
        ("en-0002", "Paris"),
        ("en-0002", "Paris"),
        ("zh-0001", "巴黎"),
    ]
    assert members["pair:Q142|Q90:Q142"] == [("en-0001", "France"), ("en-0002", "France"), ("zh-0001", "法国")]
    # (Q7186 Marie Curie, P27, Q142 France) and (Q7186, P27, Q36 Poland): every mention of France and of Poland
    curie = Counter(surface for _, surface in members["relation:P27:head=Q7186"])
    assert curie == {"France": 3, "法国": 2, "Poland": 2, "波兰": 2}
    assert "relation:P17:tail=Q17" not in members and "relation:P159:tail=E:aurelia_city" not in members
    rules = {row["group_id"]: row["rule"] for row in groups}
    assert all(group.startswith(rule + ":") for group, rule in rules.items())
    for group in members.values():
        assert len(group) >= 2 and len({sentence for sentence, _ in group}) >= 2


def test_num_proc_and_streaming_give_identical_output(sample, mined):
    corpus, kb = sample
    expected = mined[0].to_list()
    assert mine_positive_groups(corpus, kb, num_proc=2)[0].to_list() == expected
    streamed = load_entity_linked(SAMPLE / "corpus.jsonl", streaming=True)
    rows, report = mine_positive_groups(streamed, kb)
    assert rows.to_list() == expected and report.to_dict() == mined[1].to_dict()


def test_max_group_size_subsamples_deterministically(sample):
    corpus, kb = sample
    rows, report = mine_positive_groups(corpus, kb, max_group_size=3, seed=1)
    assert rows.to_list() == mine_positive_groups(corpus, kb, max_group_size=3, seed=1)[0].to_list()
    pair, relation = report.rules["pair"], report.rules["relation"]
    assert (pair.groups_subsampled, pair.mentions_subsampled_away, pair.mentions) == (3, 3, 76)
    assert (relation.groups_subsampled, relation.mentions_subsampled_away, relation.mentions) == (6, 28, 18)
    by_group = {}
    for row in rows:
        by_group.setdefault(row["group_id"], []).append(row["id"].split(":")[0])
    assert all(2 <= len(ids) <= 3 and len(set(ids)) >= 2 for ids in by_group.values())
    other_seeds = [mine_positive_groups(corpus, kb, max_group_size=3, seed=s)[0]["id"] for s in (2, 3)]
    assert any(ids != rows["id"] for ids in other_seeds)
    with pytest.raises(ValueError, match="at least 2"):
        mine_positive_groups(corpus, kb, max_group_size=1)


def test_relation_rule_without_kb(sample, caplog):
    corpus, _ = sample
    with caplog.at_level("INFO", logger="modeling_entity_typing.crossc.distant_supervision"):
        rows, report = mine_positive_groups(corpus)
    assert report.rules["relation"].note.startswith("skipped: no KB") and set(rows["rule"]) == {"pair"}
    assert "Rule 'relation' skipped" in caplog.text
    with pytest.raises(ValueError, match="needs a KB"):
        mine_positive_groups(corpus, rules=["relation"])
    with pytest.raises(ValueError, match="distinct names"):
        mine_positive_groups(corpus, rules=["pair", "typo"])
    only_kb, _ = mine_positive_groups(corpus, [("h", "r", "Q90"), ("h", "r", "Q64")], rules=("relation",))
    assert set(only_kb["group_id"]) == {"relation:r:head=h"} and set(only_kb["entity"]) == {"Q90", "Q64"}


def test_repeated_sentences_are_skipped_and_counted(tmp_path):
    text = "Paris is in France."
    same = {"text": text, "mentions": [link(text, "Paris", "Q90"), link(text, "France", "Q142")]}
    path = write_jsonl(tmp_path / "dup.jsonl", [same, same, {"text": "Nothing here.", "mentions": []}])
    rows, report = mine_positive_groups(load_entity_linked(path))
    assert len(rows) == 0 and (report.duplicate_sentences, report.duplicate_sentence_mentions) == (1, 2)
    assert dict(report.rules["pair"].skipped) == {"pair_in_one_sentence": 1} and report.sentences_without_links == 1
    path = write_jsonl(tmp_path / "ids.jsonl", [{"id": "a", **same}, {"id": "a", "text": "x", "mentions": []}])
    with pytest.raises(ValueError, match="'a' appears twice"):
        mine_positive_groups(load_entity_linked(path))


# ------------------------------------------------------------------------------------------------ readers
def test_jsonl_defaults_scores_and_format_detection(tmp_path):
    text = "Rome is the capital of Italy."
    records = [
        {"text": text, "mentions": [link(text, "Rome", "Q220", score=0.9), link(text, "Italy", "Q38", score=0.1)]},
        {"id": 7, "lang": "it", "text": "Roma è bella.", "mentions": [{"entity": "Q220", "start": 0, "end": 4}]},
    ]
    path = write_jsonl(tmp_path / "c.jsonl", records)
    report = LinkReport()
    corpus = load_entity_linked(path, min_link_score=0.5, lang="de", report=report)
    assert corpus["id"] == ["c-1", "7"] and corpus["lang"] == ["de", "it"]
    assert corpus[0]["mentions"] == [{"entity": "Q220", "start": 0, "end": 4}]
    assert report.files[str(path)] == {"sentences": 2, "links": 2, "links_below_min_score": 1}
    assert load_entity_linked(path)["lang"] == ["en", "it"] and detect_corpus_format(path) == "jsonl"


@pytest.mark.needs_shared_data
def test_ernie_reader_on_the_real_open_entity_files():
    raw = json.loads((ERNIE / "dev.json").read_text(encoding="utf-8"))
    report = LinkReport()
    corpus = load_entity_linked(ERNIE / "dev.json", min_link_score=0.3, report=report)
    below = sum(score < 0.3 for element in raw for *_, score in element["ents"])
    kept = sum(len(element["ents"]) for element in raw) - below
    assert len(corpus) == len(raw) == 1998 and corpus[5]["id"] == "dev-5" and set(corpus["lang"]) == {"en"}
    assert report.files[str(ERNIE / "dev.json")] == {"sentences": 1998, "links": kept, "links_below_min_score": below}
    first = raw[0]
    assert [[m["entity"], m["start"], m["end"]] for m in corpus[0]["mentions"]] == [
        e[:3] for e in first["ents"] if e[3] >= 0.3
    ]
    assert detect_corpus_format(ERNIE / "dev.json") == "ernie"


def test_ernie_links_not_the_typed_mention_make_the_pairs(tmp_path):
    sentences = ["Obama visited Paris in France .", "Paris , France hosted the summit ."]
    elements = []
    for s in sentences:
        links = [link(s, "Paris", "Q90"), link(s, "France", "Q142")]
        ents = [[e["entity"], e["start"], e["end"], 0.5] for e in links]
        elements.append({"sent": s, "start": 0, "end": 5, "labels": ["person"], "ents": ents})  # typed: "Obama"
    path = tmp_path / "train.json"
    path.write_text(json.dumps(elements), encoding="utf-8")
    rows, report = mine_positive_groups(load_entity_linked(path))
    assert sorted(set(rows["group_id"])) == ["pair:Q142|Q90:Q142", "pair:Q142|Q90:Q90"]
    assert rows["id"][0] == "train-0:23-29#pair:Q142|Q90:Q142" and report.rules["pair"].mentions == 4


@pytest.mark.parametrize(
    "content, match",
    [
        (
            '{"text": "Paris", "mentions": []}\n{"text": "Rome", "mentions": [{"entity": "Q", "start": 0, "end": 9}]}',
            r"bad\.jsonl:2 \(mention 0\): span \(0, 9\) is not inside",
        ),
        (
            '{"text": "Rome", "mentions": [{"entity": "Q220", "start": 2, "end": 2}]}\n',
            r"bad\.jsonl:1 .*span \(2, 2\)",
        ),
        ('{"text": "Rome"}\n', r"bad\.jsonl:1: missing key 'mentions'"),
        (
            '{"text": "Rome", "mentions": [{"start": 0, "end": 4}]}',
            r"bad\.jsonl:1 \(mention 0\): missing \['entity'\]",
        ),
        ('{"text": "Rome", "mentions": [{"entity": "", "start": 0, "end": 4}]}\n', r"entity id must be a non-empty"),
        ('{"text": "Rome", "mentions": [{"entity": "Q", "start": 0, "end": 4, "score": "hi"}]}', r"score must be"),
        ('{"text": "Rome", "mentions": []}\n{"text": \n', r"bad\.jsonl:2: not valid JSON"),
        ('{"text": "Rome", "lang": 3, "mentions": []}\n', r"'lang' must be str"),
    ],
)
def test_jsonl_errors_name_file_line_and_fix(tmp_path, content, match):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MentionDataError, match=match):
        load_entity_linked(path)


@pytest.mark.parametrize(
    "content, match",
    [
        (
            '[{"sent": "R", "ents": []}, {"sent": "Rome", "ents": [["Q220", 0, 4]]}]',
            r"json\[1\] \(link 0\): each link",
        ),
        ('[{"sent": "Rome", "ents": [["Q220", 3, 8, 0.4]]}]', r"bad\.json\[0\] \(link 0\): span \(3, 8\)"),
        ('[{"ents": []}]', r"bad\.json\[0\]: missing key 'sent'"),
        ('{"sent": "Rome", "ents": []}', r"bad\.json:1: missing key 'text'"),  # an object: read as JSON lines
        ('[{"sent": "Rome", "ents": []},\n', r"bad\.json:2: not valid JSON"),
    ],
)
def test_ernie_errors_name_the_element(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MentionDataError, match=match):
        load_entity_linked(path)


def test_kb_reader_tsv_and_jsonl(tmp_path):
    kb = load_kb(SAMPLE / "kb.tsv")
    assert kb[0] == {"head": "Q956", "relation": "P17", "tail": "Q148"}
    path = tmp_path / "kb.jsonl"
    path.write_text('{"head": "a", "relation": "r", "tail": "b"}\n\n{"head": "a", "relation": "r", "tail": "c"}\n')
    assert load_kb(path).to_list()[1] == {"head": "a", "relation": "r", "tail": "c"}
    path.write_text("a\tr\tb\n# comment\na\tr\n")
    with pytest.raises(MentionDataError, match=r"kb\.jsonl:3: expected 'head<TAB>relation<TAB>tail'"):
        load_kb(path)
    path.write_text('{"head": "a", "relation": "r"}\n')
    with pytest.raises(MentionDataError, match=r"kb\.jsonl:1: expected"):
        load_kb(path)
    with pytest.raises(FileNotFoundError):
        load_kb(tmp_path / "none.tsv")


def test_loader_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="No corpus files"):
        load_entity_linked([])
    with pytest.raises(FileNotFoundError, match="No corpus file"):
        load_entity_linked(tmp_path / "missing.jsonl")
    path = write_jsonl(tmp_path / "c.jsonl", [{"text": "x", "mentions": []}])
    with pytest.raises(ValueError, match="Unknown corpus format 'conll'"):
        load_entity_linked(path, format="conll")


def test_build_script_writes_rows_and_report(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "build_contrastive_data", ROOT / "examples" / "build_contrastive_data.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    output = tmp_path / "out" / "sample.jsonl"
    argv = ["--corpus", str(SAMPLE / "corpus.jsonl"), "--kb", str(SAMPLE / "kb.tsv"), "--output", str(output)]
    report = script.main([*argv, "--max_group_size", "3"])
    rows = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    saved = json.loads((tmp_path / "out" / "sample.report.json").read_text(encoding="utf-8"))
    assert len(rows) == report["rows_written"] == saved["rows_written"] == 76 + 18
    assert saved["mining"]["rules"]["relation"]["mentions_subsampled_away"] == 28
    assert all(row["text"][row["start"] : row["end"]] for row in rows) and rows[0]["source_id"] is None
    with pytest.raises(ValueError, match="--translate_to and --translator go together"):
        script.parse_args([*argv, "--translate_to", "zh"])
    with pytest.raises(ValueError, match="--rules takes names"):
        script.parse_args([*argv, "--rules", "pairs"])


@pytest.mark.parametrize("kind", ["ernie", "jsonl", "kb"])
def test_invalid_utf8_in_a_corpus_or_kb_names_file_and_line(tmp_path, kind):
    good = {
        "ernie": '[{"sent": "Paris is big.", "ents": [["Q90", 0, 5, 0.9]]},\n',
        "jsonl": '{"text": "Paris is big.", "mentions": [{"entity": "Q90", "start": 0, "end": 5}]}\n',
        "kb": "Q90\tcapital_of\tQ142\n",
    }[kind]
    bad = {"ernie": b'{"sent": "Caf\xe9", "ents": []}]\n', "jsonl": b'{"text": "Caf\xe9", "mentions": []}\n',
           "kb": b"Q1\tnamed\tCaf\xe9\n"}[kind]  # fmt: skip
    path = tmp_path / f"{kind}.{'tsv' if kind == 'kb' else 'json'}"
    path.write_bytes(good.encode() + bad)
    with pytest.raises(MentionDataError, match=rf"{path.name}:2: not valid UTF-8 .*re-encode"):
        if kind == "kb":
            load_kb(path)
        else:
            load_entity_linked(path)
