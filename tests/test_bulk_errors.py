"""Rows that cannot be typed are named (row number, file:line); `stop` writes nothing of their shard, `skip` lists
every one in the manifest, and nothing is dropped silently."""

import gzip
import json
import re

import pytest
from bulk_fixtures import MENTIONS, one_thread_fixture, run_bulk, tiny_fixture, tiny_folder_fixture  # noqa: F401  (fixtures)

from modeling_entity_typing import load_mentions
from modeling_entity_typing.bulk import BadRowError
from modeling_entity_typing.bulk.cli import main
from modeling_entity_typing.bulk.reading import RecoveringMentionReader, Unreadable


def _lines_with_bad_rows(path):
    """12 lines; line 9 (row 8) has a span past the end, line 11 is not JSON, line 12 has a blank text."""
    lines = [json.dumps({"text": text, "span": [start, end]}) for text, start, end in MENTIONS]
    lines.append(json.dumps({"text": "Paris", "span": [0, 50]}))
    lines.append(json.dumps({"text": "Paris is nice.", "span": "Paris"}))
    lines.append('{"text": "cut off')
    lines.append(json.dumps({"text": "   ", "span": [0, 2]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_stop_names_the_bad_row_and_writes_nothing_of_its_shard(tiny, tmp_path):
    data = _lines_with_bad_rows(tmp_path / "in.jsonl")
    with pytest.raises(BadRowError) as raised:
        run_bulk(tiny, data, tmp_path / "out", shard_rows=4)
    message = str(raised.value)
    assert f"Row 8 ({data}:9) cannot be typed" in message and "out of range" in message
    assert "Nothing of shard 2 (rows 8..11) was written" in message and "--on_error skip" in message
    shards = sorted(path.name for path in (tmp_path / "out" / "shards").glob("shard-*"))
    assert shards == ["shard-000000.json", "shard-000000.jsonl", "shard-000001.json", "shard-000001.jsonl"]
    # the same command with --on_error skip resumes: the two shards written are kept
    manifest, rows = run_bulk(tiny, data, tmp_path / "out", on_error="skip", shard_rows=4)
    assert manifest["throughput"]["typed_this_session"] == 1 and len(rows) == 9  # row 9 of shard 2; 8, 10, 11 bad


def test_skip_types_the_rest_and_lists_every_bad_row(tiny, tmp_path):
    data = _lines_with_bad_rows(tmp_path / "in.jsonl")
    manifest, rows = run_bulk(tiny, data, tmp_path / "out", on_error="skip", shard_rows=4)
    skipped = {entry["row"]: entry for entry in manifest["skipped"]}
    assert sorted(skipped) == [8, 10, 11]
    assert skipped[8]["where"] == f"{data}:9" and "out of range" in skipped[8]["error"]
    assert skipped[10]["where"] == f"{data}:11" and "not valid JSON" in skipped[10]["error"]
    assert skipped[11]["where"] == f"{data}:12" and "only whitespace" in skipped[11]["error"]
    assert [row["row"] for row in rows] == [0, 1, 2, 3, 4, 5, 6, 7, 9]
    counts = manifest["counts"]
    assert counts == {"rows": 12, "typed": 9, "skipped_rows": 3, "unreadable_lines": 0, "shards": 3}
    assert counts["typed"] + counts["skipped_rows"] == counts["rows"] == len(rows) + len(manifest["skipped"])


def test_undecodable_bytes_and_a_non_object_line_are_bad_rows(tiny, tmp_path):
    data = tmp_path / "in.jsonl.gz"
    with gzip.open(data, "wb") as handle:
        handle.write(b'{"text": "Paris", "span": [0, 5]}\n')
        handle.write(b'{"text": "Par\xffis", "span": [0, 5]}\n')
        handle.write(b"[1, 2]\n\n")
        handle.write(b'{"text": "Paris is big", "start": 0}\n')
    manifest, rows = run_bulk(tiny, data, tmp_path / "out", on_error="skip")
    assert [row["row"] for row in rows] == [0]
    errors = {entry["where"].rpartition(":")[2]: entry["error"] for entry in manifest["skipped"]}
    assert "not valid UTF-8" in errors["2"] and "expected an object" in errors["3"]
    assert "also needs 'end'" in errors["5"]  # the pipeline's own message


def _ufet_line(mention, labels=("person",)):
    return json.dumps({"left_context_token": ["the"], "mention_span": mention, "right_context_token": ["wrote"],
                       "y_str": list(labels)})  # fmt: skip


@pytest.mark.parametrize("chunk_bytes", [1, 1 << 20])  # a piece per line, or the whole file as one piece
def test_a_mention_file_reader_goes_on_after_a_malformed_line(tmp_path, chunk_bytes):
    path = tmp_path / "data.json"
    path.write_text("\n".join([_ufet_line("mark"), "not json", _ufet_line("twain"), _ufet_line("   "),
                               _ufet_line("paris")]) + "\n")  # fmt: skip
    read = list(RecoveringMentionReader(path, "ufet", chunk_bytes=chunk_bytes))
    errors = [item for item in read if isinstance(item, Unreadable)]
    records = [item for item in read if not isinstance(item, Unreadable)]
    assert [error.where for error in errors] == [f"{path}:2", f"{path}:4"]
    assert "not valid JSON" in errors[0].error and "'mention_span' is blank" in errors[1].error
    good = tmp_path / "good.json"
    good.write_text("\n".join([_ufet_line("mark"), "", _ufet_line("twain"), "", _ufet_line("paris")]) + "\n")
    assert records == list(load_mentions(good, "ufet"))  # same records, same ids (line numbers) as the package's


def test_a_bad_bio_line_leaves_out_its_sentence_only(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("mark\tB-person\ntwain\tI-person\n\nparis\tB-city\nis big\tO\tX\nbig\tO\n\nthe\tO\ncity\tB-city\n")
    read = list(RecoveringMentionReader(path, "bio", chunk_bytes=1))
    (error,) = [item for item in read if isinstance(item, Unreadable)]
    assert error.where == f"{path}:5" and "its sentence was left out" in error.error
    records = [item for item in read if not isinstance(item, Unreadable)]
    assert [(r["text"][r["start"] : r["end"]], r["id"]) for r in records] == [("mark twain", "1-0"), ("city", "8-0")]


def test_skip_reports_a_malformed_line_of_a_mention_file_by_file_and_line(tiny, tmp_path):
    path = tmp_path / "data.json"
    path.write_text("\n".join([_ufet_line("mark"), "{broken", _ufet_line("twain")]) + "\n")
    manifest, rows = run_bulk(tiny, path, tmp_path / "out", on_error="skip", input_format="ufet")
    assert [row["mention"] for row in rows] == ["mark", "twain"]
    assert manifest["counts"] == {"rows": 2, "typed": 2, "skipped_rows": 0, "unreadable_lines": 1, "shards": 1}
    assert manifest["skipped"][0]["where"] == f"{path}:2" and manifest["skipped"][0]["row"] is None
    with pytest.raises(BadRowError, match=f"{path}:2 cannot be typed"):
        run_bulk(tiny, path, tmp_path / "stopped", input_format="ufet")


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--batch_size", "0"], "--batch_size must be a positive integer"),
        (["--threshold", "1.5"], r"--threshold is a probability in \[0, 1\]"),
        (["--dtype", "bfloat16", "--fast", "int8"], "--dtype bfloat16 means --fast bf16"),
        (["--decision", "argmax_with_ancestors", "--threshold", "0.3"], "--threshold goes with --decision threshold"),
        (["--label_phrases_file", "/no/such/file"], "--label_phrases_file /no/such/file: no such file"),
    ],
)
def test_bad_options_stop_the_command_with_the_fix(tiny_folder, tmp_path, capsys, arguments, message):
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"text": "Paris", "span": [0, 5]}) + "\n")
    status = main(["predict", "--model", tiny_folder, "--input", str(data), "--output", str(tmp_path / "out"),
                   *arguments])  # fmt: skip
    assert status == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_the_command_names_a_missing_model_or_input(tmp_path, capsys):
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"text": "Paris", "span": [0, 5]}) + "\n")
    output = str(tmp_path / "out")
    assert main(["predict", "--model", str(tmp_path / "nothing"), "--input", str(data), "--output", output]) == 2
    assert "Cannot load the model" in capsys.readouterr().err
    assert main(["nonsense"]) == 2 and "unknown command 'nonsense'" in capsys.readouterr().err
    assert main(["--help"]) == 0 and "predict" in capsys.readouterr().out
