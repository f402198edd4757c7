"""FiveFine's label phrases (checked against the tables derived from the reference code) and the k-shot sampler."""

from pathlib import Path

import pytest

from modeling_entity_typing.data.mention_data import MentionDataError
from modeling_entity_typing.data.sampling import finest_labels, sample_k_shot
from modeling_entity_typing.fivefine.label_phrases import label_phrases_for, read_label_phrases


FIVEFINE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fivefine"


@pytest.mark.needs_shared_data
@pytest.mark.parametrize("dataset, table", [("ontonotes", "ontonotes"), ("bbn", "bbn"), ("few_nerd", "fewnerd")])
def test_phrases_match_fivefine_tables(dataset, table):
    rows = [line.split("\t") for line in (FIVEFINE / f"label_phrases_{table}.tsv").read_text().splitlines()]
    expected = {label: phrase for label, phrase in rows}
    assert label_phrases_for(expected, dataset) == expected


def test_default_rule_overrides_and_unknown_table():
    labels = ["/organization/sports_team", "/person/legal"]
    assert label_phrases_for(labels) == {"/organization/sports_team": "sports team", "/person/legal": "legal"}
    assert label_phrases_for(labels, "ontonotes")["/person/legal"] == "legal person lawyer judge"
    mine = label_phrases_for(labels, "ontonotes", {"/person/legal": "attorney"})
    assert mine["/person/legal"] == "attorney"
    with pytest.raises(ValueError, match="No phrase table for dataset 'figer'"):
        label_phrases_for(labels, "figer")


def test_phrase_file(tmp_path):
    path = tmp_path / "phrases.tsv"
    path.write_text("# mine\n/person/artist\tartist painter\n\n/location\tplace\n")
    assert read_label_phrases(path) == {"/person/artist": "artist painter", "/location": "place"}
    path.write_text("/person/artist\tartist\n/location place\n")
    with pytest.raises(MentionDataError, match=r"phrases.tsv:2: expected 'label<TAB>phrase'"):
        read_label_phrases(path)
    path.write_text("/a\tx\n/a\ty\n")
    with pytest.raises(MentionDataError, match=r":2: label '/a' is mapped twice"):
        read_label_phrases(path)


def test_finest_labels():
    assert finest_labels(["/person", "/person/artist", "/person/artist/author"]) == ("/person/artist/author",)
    assert finest_labels(["/person"]) == ("/person",)
    assert finest_labels(["/a/x", "/b/y", "/a"]) == ("/a/x", "/b/y")


LABELS = [["/p", "/p/a"]] * 7 + [["/p"]] * 6 + [["/l", "/l/c"]] * 3 + [[]] + [["/l/c", "/o"]] * 5


def test_k_shot_is_per_finest_type_and_seeded(caplog):
    sample = sample_k_shot(LABELS, 5, seed=3)
    assert sample.examples_per_type == {"/l/c": 3, "/l/c|/o": 5, "/p": 5, "/p/a": 5}
    assert sample.short_types == {"/l/c": 3} and sample.unlabelled == 1
    assert "1 types have fewer than 5 examples" in caplog.text and "/l/c (3)" in caplog.text
    assert sample.indices == sorted(sample.indices) and len(set(sample.indices)) == 18
    assert sample_k_shot(LABELS, 5, seed=3).indices == sample.indices
    assert sample_k_shot(LABELS, 5, seed=4).indices != sample.indices
    by_type = {row: "|".join(finest_labels(LABELS[row])) for row in sample.indices}
    assert all(by_type[row] != "" for row in sample.indices)


def test_a_types_sample_does_not_depend_on_other_types():
    alone = sample_k_shot([["/p", "/p/a"]] * 7, 3, seed=1).indices
    mixed = sample_k_shot([["/p", "/p/a"]] * 7 + [["/x"]] * 9, 3, seed=1).indices
    assert [row for row in mixed if row < 7] == alone


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_must_be_a_positive_integer(k):
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        sample_k_shot(LABELS, k, seed=0)
