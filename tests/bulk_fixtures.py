"""Shared pieces of the bulk typer's tests (tests/test_bulk_*.py): mentions, a tiny model whose scores are spread, a
run in this process, and the pipeline's results to compare with."""

import copy
import json
from pathlib import Path

import pytest
import torch
from tiny import make_tiny_model, make_tiny_tokenizer
from transformers import pipeline

import modeling_entity_typing  # noqa: F401  (registers the pipeline task)
from modeling_entity_typing.bulk import BulkOptions, BulkRun, InputSpec, open_source, read_predictions


# Lengths vary so that length-sorted batches reorder them; one long text is cut to the model's window.
MENTIONS = [
    ("Mark Twain wrote in Paris.", 0, 10),
    ("Paris is a big city.", 0, 5),
    ("The sports team of Paris is nice, and big.", 4, 15),
    ("a " * 40 + "Paris" + " b" * 40, 80, 85),
    ("the company is in the town of paris", 4, 11),
    ("mark twain is a writer and an author", 0, 10),
    ("the big town", 8, 12),
    ("time of the artist in paris is nice", 0, 4),
]


def tiny_model_and_tokenizer():
    """The tiny FiveFine model of tests/tiny.py with spread scores (as conftest's `typer`), and its tokenizer."""
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer)
    with torch.no_grad():
        model.type_encoder.layer_norm.weight.mul_(0.05)
    return model.eval(), tokenizer


# Fixtures under their own names, so that a test module imports them without shadowing its parameters:
# `from bulk_fixtures import one_thread_fixture, tiny_fixture`.
@pytest.fixture(autouse=True, name="one_thread")
def one_thread_fixture():
    """Tiny models run fastest on one thread, and stay fast next to other work on the machine; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", name="tiny")
def tiny_fixture():
    return tiny_model_and_tokenizer()


@pytest.fixture(scope="module", name="tiny_folder")
def tiny_folder_fixture(tiny, tmp_path_factory) -> str:
    """The tiny model saved with its tokenizer, for the command line."""
    folder = tmp_path_factory.mktemp("tiny-model")
    model, tokenizer = tiny
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_jsonl(path: Path, mentions=MENTIONS, repeat: int = 1) -> Path:
    """`{"id", "text", "span"}` lines; with `repeat`, the mentions again and again (ids stay unique)."""
    with open(path, "w", encoding="utf-8") as handle:
        for copy_number in range(repeat):
            for number, (text, start, end) in enumerate(mentions):
                record = {"id": f"m{copy_number}-{number}", "text": text, "span": [start, end]}
                handle.write(json.dumps(record) + "\n")
    return path


def run_bulk(tiny, inputs, output, *, input_format="auto", on_error="stop", overwrite=False, **options):
    """A bulk run in this process on a copy of the tiny model; returns the manifest and the output rows."""
    model, tokenizer = copy.deepcopy(tiny[0]), tiny[1]
    options = {"fast": "fp32", "batch_size": 3, "window_rows": 5, "shard_rows": 7, **options}
    paths = tuple(str(path) for path in (inputs if isinstance(inputs, (list, tuple)) else [inputs]))
    source = open_source(InputSpec(paths, input_format), recover=on_error == "skip")
    run = BulkRun(model, tokenizer, source, output, BulkOptions(**options), on_error=on_error, overwrite=overwrite)
    manifest = run.run()
    return manifest, list(read_predictions(output))


def pipeline_results(tiny, mentions, **options):
    """What `pipeline("entity-typing")` returns for `(text, start, end)` mentions."""
    typer = pipeline("entity-typing", model=copy.deepcopy(tiny[0]), tokenizer=tiny[1])
    return typer([{"text": text, "span": (start, end)} for text, start, end in mentions], batch_size=4, **options)


def assert_same_as_pipeline(rows, expected) -> None:
    """Same labels in the same order, scores equal up to float noise, same mention, span and flags."""
    assert len(rows) == len(expected)
    for row, result in zip(rows, expected):
        assert row["labels"] == [item["label"] for item in result["labels"]], row["row"]
        assert row["scores"] == pytest.approx([item["score"] for item in result["labels"]], abs=1e-5)
        assert row["mention"] == result["mention"] and tuple(row["span"]) == tuple(result["span"])
        assert row["truncated"] == result["truncated"] and row["mention_truncated"] == result["mention_truncated"]
