"""The bulk typer reads every input kind and writes what `pipeline("entity-typing")` returns for the same mentions."""

import copy
import csv
import gzip
import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from bulk_fixtures import (  # noqa: F401  (fixtures)
    MENTIONS,
    assert_same_as_pipeline,
    one_thread_fixture,
    pipeline_results,
    run_bulk,
    tiny_fixture,
    tiny_folder_fixture,
    write_jsonl,
)
from tiny import make_tiny_crossc_model, make_tiny_tokenizer

from modeling_entity_typing import decide, load_mentions
from modeling_entity_typing.bulk import BulkError, InputSpec, LabelRule, open_source
from modeling_entity_typing.bulk.cli import main
from modeling_entity_typing.bulk.reading import InputError, detect_input_format


TOKEN_MENTIONS = [
    (["mark", "twain", "wrote", "in", "paris", "."], 0, 2, "person"),
    (["paris", "is", "a", "big", "city", "."], 0, 1, "location-city"),
    (["the", "sports", "team", "of", "paris", "is", "nice"], 1, 3, "organization-sports_team"),
    (["in", "the", "big", "town", "the", "writer", "wrote"], 5, 6, "person"),
]


def _ufet(tokens, start, end, label):
    return {"left_context_token": tokens[:start], "mention_span": " ".join(tokens[start:end]),
            "right_context_token": tokens[end:], "y_str": [label]}  # fmt: skip


def _ali(tokens, start, end, label):
    return {"left_context": tokens[:start], "word": " ".join(tokens[start:end]), "right_context": tokens[end:],
            "y_category": [label]}  # fmt: skip


def _afet(tokens, start, end, label):
    return {"tokens": tokens, "mentions": [{"start": start, "end": end, "labels": [label]}]}


def _mentions(tokens, start, end, label):
    text = " ".join(tokens)
    char_start = len(" ".join(tokens[:start])) + (1 if start else 0)
    return {"text": text, "start": char_start, "end": char_start + len(" ".join(tokens[start:end])), "labels": [label]}


def _json_lines(path, make):
    path.write_text("".join(json.dumps(make(*mention)) + "\n" for mention in TOKEN_MENTIONS))
    return path


def _tsv(path):
    lines = [f"{start}\t{end}\t{' '.join(tokens)}\t{label}\n" for tokens, start, end, label in TOKEN_MENTIONS]
    path.write_text("".join(lines))
    return path


def _bio(path):
    lines = []
    for tokens, start, end, label in TOKEN_MENTIONS:
        for position, token in enumerate(tokens):
            tag = "O" if not start <= position < end else ("B-" if position == start else "I-") + label
            lines.append(f"{token}\t{tag}\n")
        lines.append("\n")
    path.write_text("".join(lines))
    return path


MENTION_FORMATS = {
    "mentions": lambda folder: _json_lines(folder / "data.jsonl", _mentions),
    "ufet": lambda folder: _json_lines(folder / "data.json", _ufet),
    "ali": lambda folder: _json_lines(folder / "data.json", _ali),
    "afet": lambda folder: _json_lines(folder / "data.json", _afet),
    "tsv": lambda folder: _tsv(folder / "data.txt"),
    "bio": lambda folder: _bio(folder / "data.txt"),
}


@pytest.mark.parametrize("format", sorted(MENTION_FORMATS))
def test_every_load_mentions_format_round_trips(tiny, tmp_path, format):
    path = MENTION_FORMATS[format](tmp_path)
    records = list(load_mentions(path, format))
    manifest, rows = run_bulk(tiny, path, tmp_path / "out", input_format=format, top_k=3)
    expected = pipeline_results(tiny, [(r["text"], r["start"], r["end"]) for r in records], top_k=3)
    assert_same_as_pipeline(rows, expected)
    assert [row["id"] for row in rows] == [record["id"] for record in records]
    assert [row["row"] for row in rows] == list(range(len(records)))
    assert manifest["counts"] == {"rows": len(records), "typed": len(records), "skipped_rows": 0,
                                  "unreadable_lines": 0, "shards": 1}  # fmt: skip


def _gzipped_jsonl_with_own_columns(folder):
    path = folder / "corpus.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        for number, (text, start, end) in enumerate(MENTIONS):
            handle.write(json.dumps({"key": number * 10, "sentence": text, "entity": text[start:end]}) + "\n")
    columns = ["--text_column", "sentence", "--span_column", "entity", "--id_column", "key"]
    return [path], "auto", columns, [str(number * 10) for number in range(len(MENTIONS))]


def _jsonl_with_offset_columns(folder):
    path = folder / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t, "start": s, "end": e}) + "\n" for t, s, e in MENTIONS))
    return [path], "auto", [], [str(number) for number in range(len(MENTIONS))]


def _csv(folder):
    path = folder / "corpus.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "span"])
        for number, (text, start, end) in enumerate(MENTIONS):  # offsets as JSON, or the mention string
            writer.writerow([f"c{number}", text, json.dumps([start, end]) if number % 2 else text[start:end]])
    return [path], "auto", [], [f"c{number}" for number in range(len(MENTIONS))]


def _two_parquet_files(folder):
    rows = [{"id": f"p{n}", "text": t, "start": s, "end": e} for n, (t, s, e) in enumerate(MENTIONS)]
    paths = [folder / "a.parquet", folder / "b.parquet"]
    pq.write_table(pa.Table.from_pylist(rows[:3]), paths[0])
    pq.write_table(pa.Table.from_pylist(rows[3:]), paths[1])
    return paths, "auto", [], [row["id"] for row in rows]


def _saved_dataset(folder):
    rows = [{"text": t, "span": [s, e]} for t, s, e in MENTIONS]
    datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)}).save_to_disk(folder / "saved")
    return [folder / "saved"], "auto", ["--split", "test"], [str(number) for number in range(len(MENTIONS))]


def _streamed_dataset_folder(folder):
    data = folder / "files" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([{"text": t, "start": s, "end": e} for t, s, e in MENTIONS]),
                   data / "train-00000.parquet")  # fmt: skip
    return [folder / "files"], "dataset", ["--streaming", "--split", "train"], [str(n) for n in range(len(MENTIONS))]


COLUMN_INPUTS = {
    "jsonl.gz, own column names, mention strings": _gzipped_jsonl_with_own_columns,
    "jsonl, start and end columns": _jsonl_with_offset_columns,
    "csv": _csv,
    "parquet, two files": _two_parquet_files,
    "dataset saved to disk": _saved_dataset,
    "dataset folder, streamed": _streamed_dataset_folder,
}


@pytest.mark.parametrize("kind", list(COLUMN_INPUTS))
def test_every_column_input_round_trips_through_the_command(tiny, tiny_folder, tmp_path, kind, capsys):
    paths, input_format, columns, ids = COLUMN_INPUTS[kind](tmp_path)
    output = tmp_path / "out"
    status = main(["predict", "--model", tiny_folder, "--input", *map(str, paths), "--output", str(output),
                   "--input_format", input_format, *columns, "--fast", "fp32", "--threshold", "0.5",
                   "--shard_rows", "3", "--output_format", "parquet", "--no_progress"])  # fmt: skip
    assert status == 0, capsys.readouterr().err
    rows = list(pq.read_table(output / "predictions.parquet").to_pylist())
    assert_same_as_pipeline(rows, pipeline_results(tiny, MENTIONS, threshold=0.5))
    assert [row["id"] for row in rows] == ids
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["counts"]["typed"] == len(MENTIONS) and manifest["counts"]["shards"] == 3
    assert not (output / "shards").exists()


def test_candidate_labels_and_phrases_equal_the_pipeline(tiny, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl")
    labels = ("river", "/location/city", "writer")
    _, rows = run_bulk(tiny, path, tmp_path / "a", candidate_labels=labels, top_k=2)
    assert_same_as_pipeline(rows, pipeline_results(tiny, MENTIONS, candidate_labels=list(labels), top_k=2))
    phrases = (("river", "big river"), ("writer", "author"))
    _, rows = run_bulk(tiny, path, tmp_path / "b", label_phrases=phrases, decision="argmax_with_ancestors")
    expected = pipeline_results(tiny, MENTIONS, candidate_labels=dict(phrases), decision="argmax_with_ancestors")
    assert_same_as_pipeline(rows, expected)


@pytest.mark.parametrize(
    "decision, threshold, top_k",
    [("threshold", None, 3), ("threshold", None, 99), ("threshold", 0.5, None), ("threshold", 0.5, 2),
     ("argmax_with_ancestors", None, None)],
)  # fmt: skip
def test_the_label_rule_gives_what_decide_gives(decision, threshold, top_k):
    labels = ("/person", "/person/artist", "/location", "/location/city", "time", "/organization")
    generator = torch.Generator().manual_seed(0)
    rows = [torch.rand(len(labels), generator=generator), torch.full((len(labels),), 0.5)]  # ties too
    rule = LabelRule(labels, decision, threshold, top_k)
    for probabilities in rows:
        expected = decide(probabilities, list(labels), decision=decision, threshold=threshold, top_k=top_k)
        assert rule(probabilities) == ([item["label"] for item in expected], [item["score"] for item in expected])


def test_a_crossc_model_types_as_its_pipeline(tmp_path):
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_crossc_model(tokenizer).eval()  # the tokenizer gains the [ENT] marker
    path = write_jsonl(tmp_path / "in.jsonl")
    _, rows = run_bulk((model, tokenizer), path, tmp_path / "out", threshold=0.5)
    assert_same_as_pipeline(rows, pipeline_results((model, tokenizer), MENTIONS, threshold=0.5))
    with pytest.raises(BulkError, match="types against its trained labels only"):
        run_bulk((model, tokenizer), path, tmp_path / "other", candidate_labels=("city",))


def test_the_models_own_rule_and_per_label_thresholds(tiny, tmp_path):
    model = copy.deepcopy(tiny[0])
    model.config.label_thresholds = {"person": 0.3, "time": 0.9}
    path = write_jsonl(tmp_path / "in.jsonl")
    _, rows = run_bulk((model, tiny[1]), path, tmp_path / "out")
    assert_same_as_pipeline(rows, pipeline_results((model, tiny[1]), MENTIONS))


def test_evaluate_scores_the_output_against_gold(tiny_folder, tmp_path, capsys):
    gold = _json_lines(tmp_path / "gold.jsonl", _mentions)
    output = tmp_path / "out"
    main(["predict", "--model", tiny_folder, "--input", str(gold), "--output", str(output), "--input_format",
          "mentions", "--fast", "fp32", "--top_k", "1", "--no_progress"])  # fmt: skip
    capsys.readouterr()
    assert (
        main(["evaluate", "--predictions", str(output), "--gold", str(gold), "--output", str(tmp_path / "s.json")])
        == 0
    )
    scores = json.loads(capsys.readouterr().out)
    predicted = [json.loads(line)["labels"] for line in (output / "predictions.jsonl").read_text().splitlines()]
    gold_labels = [[mention[3]] for mention in TOKEN_MENTIONS]
    expected = sum(p == g for p, g in zip(predicted, gold_labels)) / len(gold_labels)
    assert scores["strict_accuracy"] == pytest.approx(expected) and scores["num_mentions"] == len(TOKEN_MENTIONS)
    assert scores["missing_predictions"] == 0 and json.loads((tmp_path / "s.json").read_text()) == scores
    # another file's gold does not match the mentions typed
    other = _json_lines(tmp_path / "other.jsonl", lambda *m: _mentions(*m) | {"text": "x " + _mentions(*m)["text"]})
    assert main(["evaluate", "--predictions", str(output), "--gold", str(other)]) == 2
    assert "predictions are of another input" in capsys.readouterr().err


def test_detection_and_input_errors_say_what_to_do(tmp_path):
    jsonl = write_jsonl(tmp_path / "in.jsonl")
    assert detect_input_format([str(jsonl)]) == "jsonl"
    assert detect_input_format([str(MENTION_FORMATS["ufet"](tmp_path))]) == "ufet"
    with pytest.raises(InputError, match="No input file at .*missing.jsonl"):
        open_source(InputSpec((str(tmp_path / "missing.jsonl"),)), recover=False)
    unknown = tmp_path / "what.txt"
    unknown.write_text("just some words here\n")
    with pytest.raises(InputError, match="cannot tell the format.*--input_format"):
        open_source(InputSpec((str(unknown),)), recover=False)
    rows = [{"text": "Paris", "span": [0, 5]}]
    datasets.DatasetDict({"a": datasets.Dataset.from_list(rows), "b": datasets.Dataset.from_list(rows)}).save_to_disk(
        tmp_path / "two"
    )
    with pytest.raises(InputError, match=r"splits \['a', 'b'\]; choose one with --split"):
        open_source(InputSpec((str(tmp_path / "two"),)), recover=False)
