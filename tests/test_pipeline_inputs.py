"""What the entity-typing pipeline accepts and how it reports bad inputs: batches with bad items (named by index,
nothing typed, or `errors="return"`), text types, the package's own mention records, whole-word mention strings,
transformers' `top_k` convention, the bounded phrase cache, and library-mode loading of a Hub export."""

import copy
import json
import logging
import math
import threading
from contextlib import contextmanager

import pytest
import torch
from datasets import Dataset
from tiny import make_tiny_model, make_tiny_tokenizer
from transformers import pipeline

from modeling_entity_typing import EntityTypingInputError, load_mentions
from modeling_entity_typing.export.hub import export_for_hub


TEXT = "Mark Twain wrote in Paris, and Paris is a big city."
OK = {"text": TEXT, "span": (0, 10)}


@contextmanager
def counting_forward_calls(model):
    """Count the model's forward calls inside the block (`calls[0]`)."""
    calls = [0]
    handle = model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        yield calls
    finally:
        handle.remove()


def same_result(one: dict, other: dict) -> bool:
    """Equal results: same labels in the same order, scores equal up to batching noise, same metadata."""
    return (
        [x["label"] for x in one["labels"]] == [x["label"] for x in other["labels"]]
        and [x["score"] for x in one["labels"]] == pytest.approx([x["score"] for x in other["labels"]], abs=1e-5)
        and {k: v for k, v in one.items() if k != "labels"} == {k: v for k, v in other.items() if k != "labels"}
    )


# ---------------------------------------------------------------------------------------------------------------------
# Batches with bad items


def test_a_list_with_bad_items_types_nothing_and_names_every_bad_index(typer):
    batch = [OK, OK, {"text": TEXT, "span": (50, 60)}, OK, {"text": b"Paris", "span": (0, 5)}, OK]
    with counting_forward_calls(typer.model) as calls, pytest.raises(EntityTypingInputError) as caught:
        typer(batch, batch_size=2)
    error = caught.value
    assert calls[0] == 0  # checked whole before the model ran: nothing was half done
    assert isinstance(error, ValueError) and isinstance(error, TypeError)
    assert set(error.problems) == {2, 4}
    message = str(error)
    assert message.startswith("2 of 6 inputs are invalid, so none was typed.") and "errors='return'" in message
    assert "item 2: `span` (50, 60) is out of range for a text of 51 characters." in message
    assert "item 4: `text` must be a str, got bytes (decode it first: text.decode('utf-8'))." in message


def test_a_mention_the_tokenizer_drops_is_found_before_the_model_runs(typer):
    batch = [OK, {"text": "a \u0301 b", "span": (2, 3)}]
    with counting_forward_calls(typer.model) as calls, pytest.raises(EntityTypingInputError) as caught:
        typer(batch)
    assert calls[0] == 0
    assert list(caught.value.problems) == [1]
    assert "item 1: The mention '\u0301' has no word pieces for this tokenizer" in str(caught.value)


def test_a_long_list_of_bad_items_lists_twenty_and_keeps_them_all(typer):
    batch = [{"text": TEXT, "span": (0, 100 + index)} for index in range(25)]
    with pytest.raises(EntityTypingInputError, match=r"25 of 25 inputs are invalid") as caught:
        typer(batch)
    assert sorted(caught.value.problems) == list(range(25))
    message = str(caught.value)
    assert "item 19:" in message and "item 20:" not in message and "... and 5 more" in message


@pytest.mark.parametrize("batch_size", [1, 2, 4])
def test_errors_return_types_the_good_items_and_reports_bad_ones_in_place(typer, batch_size):
    batch = [OK, {"text": TEXT, "span": "Paris"}, {"text": TEXT, "span": (50, 60)}, {"text": None, "span": (0, 1)}]
    batch.append({"text": "The sports team of Paris is nice.", "span": (4, 15)})
    results = typer(batch, batch_size=batch_size, threshold=0.0, errors="return")
    assert len(results) == len(batch)
    assert results[2] == {"index": 2, "error": "`span` (50, 60) is out of range for a text of 51 characters."}
    assert results[3] == {"index": 3, "error": "`text` must be a str, got None."}
    for index in (0, 1, 4):
        assert same_result(results[index], typer(batch[index], threshold=0.0)), index


def test_errors_return_in_a_stream_and_for_a_single_input(typer):
    rows = [OK, {"text": TEXT, "span": "Hartford"}, OK]
    streamed = list(typer((row for row in rows), batch_size=2, errors="return"))
    assert streamed[1] == {
        "index": 1,
        "error": "The mention 'Hartford' does not occur in the text; pass character offsets instead.",
    }
    assert same_result(streamed[0], typer(OK)) and same_result(streamed[2], typer(OK))
    assert typer(TEXT, span=(3, 3), errors="return") == {
        "error": "`span` (3, 3) is empty: end is exclusive, so (start, start + length)."
    }


def test_errors_return_can_be_set_when_the_pipeline_is_built(_tiny_model, tiny_tokenizer):
    typer = pipeline(
        "entity-typing", model=copy.deepcopy(_tiny_model).eval(), tokenizer=tiny_tokenizer, errors="return"
    )
    assert typer([OK, {"text": TEXT}])[1]["index"] == 1


def test_a_stream_raises_at_the_bad_item_naming_its_index(typer):
    rows = [OK, OK, OK, {"text": TEXT, "span": (10, 0)}, OK]
    results = []
    with pytest.raises(EntityTypingInputError, match=r"^Input 3 is invalid: `span` \(10, 0\) is reversed") as caught:
        for result in typer((row for row in rows), batch_size=1):
            results.append(result)
    assert caught.value.problems == {3: "`span` (10, 0) is reversed: start must come before end (end is exclusive)."}
    assert len(results) == 3  # what came before the bad item was returned
    with pytest.raises(
        EntityTypingInputError, match=r"^Input 1 is invalid: `text` must be a str, got None\. \(The results of earlier"
    ):
        list(typer(Dataset.from_list([{"text": TEXT, "span": [0, 10]}, {"text": None, "span": [0, 1]}])))


def test_an_empty_list_gives_an_empty_list_and_still_checks_the_options(typer):
    assert typer([]) == [] and typer([], batch_size=4) == []
    with pytest.raises(ValueError, match="`top_k` must be a positive integer"):
        typer([], top_k=0)
    with pytest.raises(ValueError, match=r"`errors` must be 'raise' .* or 'return'"):
        typer([OK], errors="ignore")
    assert len(typer([OK], errors=None)) == 1  # None is the default, as for every option


# ---------------------------------------------------------------------------------------------------------------------
# Text types


@pytest.mark.parametrize(
    "text, message",
    [
        (None, r"`text` must be a str, got None\.$"),
        (b"Mark Twain", r"`text` must be a str, got bytes \(decode it first: text\.decode\('utf-8'\)\)\.$"),
        (bytearray(b"Mark Twain"), r"got bytearray \(decode it first"),
        (123, r"`text` must be a str, got int\.$"),
        (12.5, r"`text` must be a str, got float\.$"),
    ],
)
def test_a_text_of_the_wrong_type_is_named_not_the_span(typer, text, message):
    with pytest.raises(TypeError, match=message):
        typer(text, span=(0, 4))
    with pytest.raises(TypeError, match=message):
        typer(text)
    with pytest.raises(TypeError, match=message):
        typer({"text": text, "span": (0, 4)})


def test_span_with_many_inputs_still_says_to_use_dicts(typer):
    with pytest.raises(TypeError, match=r"`span=` goes with a single text"):
        typer([OK], span=(0, 4))
    with pytest.raises(TypeError, match=r"`span=` goes with a text\. In a dict give it as the key"):
        typer(OK, span=(0, 4))


# ---------------------------------------------------------------------------------------------------------------------
# The package's own mention records


def test_records_with_start_and_end_are_typed_and_their_labels_ignored(typer, tmp_path):
    records = [
        {"text": TEXT, "start": 0, "end": 10, "labels": ["/person"], "id": "a"},
        {"text": "The sports team of Paris is nice.", "start": 4, "end": 15, "labels": [], "extra_labels": ["x"]},
    ]
    path = tmp_path / "mentions.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    expected = [typer(TEXT, span=(0, 10)), typer("The sports team of Paris is nice.", span=(4, 15))]
    for got in (typer(records), list(typer(load_mentions(path, format="mentions"))), list(typer(iter(records)))):
        assert len(got) == 2 and all(same_result(one, other) for one, other in zip(got, expected))
    assert same_result(typer(records[0]), expected[0])


@pytest.mark.parametrize(
    "item, message",
    [
        ({"text": TEXT, "span": (0, 4), "start": 0, "end": 4}, r"either as 'span' or as 'start' and 'end', not both"),
        ({"text": TEXT, "span": "Mark", "start": 0}, r"not both; got span='Mark', start=0\."),
        ({"text": TEXT}, r"No mention given: .* the key 'span' or the keys 'start' and 'end'"),
        ({"text": TEXT, "start": 0}, r"An input dict with 'start' also needs 'end'"),
        ({"text": TEXT, "end": 4}, r"An input dict with 'end' also needs 'start'"),
        ({"text": TEXT, "start": 0, "end": 100}, r"`span` \(0, 100\) is out of range"),
        ({"text": TEXT, "start": 0.0, "end": 4}, r"`span` must be \(start, end\) character offsets"),
    ],
)
def test_a_dict_with_both_span_and_offsets_or_neither_is_refused(typer, item, message):
    with pytest.raises((TypeError, ValueError), match=message):
        typer(item)
    with pytest.raises(EntityTypingInputError, match=r"item 1: .*" + message):
        typer([OK, item])


def test_a_table_with_span_and_offset_columns_uses_whichever_a_row_has(typer):
    rows = [
        {"text": TEXT, "span": [0, 10], "start": None, "end": None},
        {"text": TEXT, "span": None, "start": 20, "end": 25},
    ]
    results = list(typer(Dataset.from_list(rows)))  # a table holds every column; a missing value is None
    assert [r["span"] for r in results] == [(0, 10), (20, 25)]


# ---------------------------------------------------------------------------------------------------------------------
# Mention strings


WHOLE_WORD_CASES = [
    ("Parisian artists love Paris.", "Paris", (22, 27)),
    ("Parisian artists love Paris", "Paris", (22, 27)),
    ("Paris_2 and Paris", "Paris", (12, 17)),
    ("Twains and Mark Twain", "Twain", (16, 21)),
    ("Mark Twain's home", "Mark Twain", (0, 10)),
    ("I said (Paris) and Paris.", "(Paris)", (7, 14)),  # a mention edged by punctuation needs no boundary there
    ("Parisian artists", "Paris", (0, 5)),  # no whole-word occurrence: the first one anywhere
    ("東京タワーは東京にある", "東京", (0, 2)),  # no spaces between words: the first occurrence
]


def test_a_mention_string_is_matched_as_a_whole_word_first(typer):
    found = {(text, mention): typer(text, span=mention) for text, mention, _ in WHOLE_WORD_CASES}
    wrong = [
        (text, mention, found[text, mention]["span"], span)
        for text, mention, span in WHOLE_WORD_CASES
        if found[text, mention]["span"] != span or found[text, mention]["mention"] != mention
    ]
    assert not wrong, wrong  # (text, mention, span found, span expected)


# ---------------------------------------------------------------------------------------------------------------------
# top_k, threshold and decision


def test_top_k_alone_returns_the_k_best_and_with_a_threshold_caps_it(typer):
    candidates = ["writer", "town", "team"]
    everything = typer(TEXT, span=(0, 10), candidate_labels=candidates, threshold=0.0)["labels"]
    typer.model.config.threshold = 1.0  # under the config's rule only the best label comes back
    try:
        assert len(typer(TEXT, span=(0, 10), candidate_labels=candidates)["labels"]) == 1
        assert typer(TEXT, span=(0, 10), candidate_labels=candidates, top_k=3)["labels"] == everything
        assert typer(TEXT, span=(0, 10), candidate_labels=candidates, top_k=2)["labels"] == everything[:2]
        assert typer(TEXT, span=(0, 10), candidate_labels=candidates, top_k=10)["labels"] == everything
    finally:
        typer.model.config.threshold = 0.5
    # with a threshold: the threshold, then at most k labels
    everything = typer(TEXT, span=(0, 10), threshold=0.0)["labels"]
    cut = everything[2]["score"]
    assert typer(TEXT, span=(0, 10), threshold=cut)["labels"] == everything[:3]
    assert typer(TEXT, span=(0, 10), threshold=cut, top_k=2)["labels"] == everything[:2]
    assert typer(TEXT, span=(0, 10), threshold=cut, top_k=5)["labels"] == everything[:3]
    # decision="threshold" named outright with top_k: the config's threshold, then the cap
    typer.model.config.threshold = cut
    try:
        assert typer(TEXT, span=(0, 10), decision="threshold", top_k=2)["labels"] == everything[:2]
        assert typer(TEXT, span=(0, 10), decision="threshold", top_k=4)["labels"] == everything[:3]
    finally:
        typer.model.config.threshold = 0.5


def test_top_k_alone_overrides_a_config_argmax_rule_but_a_named_rule_is_kept(typer):
    everything = typer(TEXT, span=(0, 10), threshold=0.0)["labels"]
    typer.model.config.decision = "argmax_with_ancestors"
    try:
        assert typer(TEXT, span=(0, 10), top_k=4)["labels"] == everything[:4]
        named = typer(TEXT, span=(0, 10), decision="argmax_with_ancestors", top_k=4)["labels"]
        assert named == typer(TEXT, span=(0, 10))["labels"][:4] and named[0] == everything[0]
    finally:
        typer.model.config.decision = "threshold"
    with pytest.raises(ValueError, match=r"`threshold` \(0\.3\) applies to decision='threshold' only"):
        typer(TEXT, span=(0, 10), decision="argmax_with_ancestors", threshold=0.3)


# ---------------------------------------------------------------------------------------------------------------------
# The phrase cache of candidate label sets


def test_the_phrase_cache_is_a_bounded_lru(typer, monkeypatch):
    typer._phrase_inputs.clear()
    monkeypatch.setattr(typer, "phrase_cache_size", 3)
    encoded = []
    original = typer.model.label_set_inputs
    monkeypatch.setattr(typer.model, "label_set_inputs", lambda s, t: encoded.append(s.labels) or original(s, t))
    sets = [[f"type{n}", "city"] for n in range(5)]
    for labels in sets:
        typer(TEXT, span=(0, 10), candidate_labels=labels)
    assert len(typer._phrase_inputs) == 3
    assert [s.labels for s in typer._phrase_inputs] == [tuple(labels) for labels in sets[2:]]
    typer(TEXT, span=(0, 10), candidate_labels=sets[2])  # a hit: not encoded again, now the most recent
    assert len(encoded) == 5 and [s.labels for s in typer._phrase_inputs][-1] == tuple(sets[2])
    typer(TEXT, span=(0, 10), candidate_labels=sets[0])  # evicted earlier: encoded again, evicting the oldest
    assert len(encoded) == 6 and [s.labels[0] for s in typer._phrase_inputs] == ["type4", "type2", "type0"]


def test_the_phrase_cache_stays_bounded_under_threads(_tiny_model, tiny_tokenizer):
    typer = pipeline("entity-typing", model=copy.deepcopy(_tiny_model).eval(), tokenizer=tiny_tokenizer)
    typer.phrase_cache_size = 2
    expected = {n: typer(TEXT, span=(0, 10), candidate_labels=[f"type{n}", "city"], threshold=0.0) for n in range(6)}
    failures = []

    def work(offset: int) -> None:
        for step in range(12):
            n = (offset + step) % 6
            result = typer(TEXT, span=(0, 10), candidate_labels=[f"type{n}", "city"], threshold=0.0)
            if not same_result(result, expected[n]):
                failures.append((n, result))

    threads = [threading.Thread(target=work, args=(offset,)) for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(typer._phrase_inputs) <= 2


# ---------------------------------------------------------------------------------------------------------------------
# Library mode: a Hub export with the package imported


def test_a_hub_export_loads_through_the_registered_pipeline_without_remote_code(tmp_path):
    tokenizer = make_tiny_tokenizer()
    model = make_tiny_model(tokenizer).eval()
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    folder = export_for_hub(tmp_path / "model", tmp_path / "export", "org/tiny")
    assert "entity-typing" in json.loads((folder / "config.json").read_text())["custom_pipelines"]
    typer = pipeline("entity-typing", model=str(folder))
    assert type(typer).__module__ == "modeling_entity_typing.pipelines.entity_typing"
    reference = pipeline("entity-typing", model=model, tokenizer=tokenizer)
    assert same_result(typer(TEXT, span=(0, 10), threshold=0.0), reference(TEXT, span=(0, 10), threshold=0.0))


# ---------------------------------------------------------------------------------------------------------------------
# Text that cannot be encoded, bad batch sizes, a list item that fails late, non-finite scores

SURROGATE_TEXT = "x \ud800 Paris"
SURROGATE_MESSAGE = "`text` holds the lone surrogate \\ud800 at character 2 (half of a UTF-16 pair"


def test_a_lone_surrogate_is_named_with_its_offset_not_left_to_the_tokenizer(typer):
    for call in ({"span": (4, 9)}, {"span": "Paris"}, {"span": (2, 3)}):
        with pytest.raises(ValueError) as caught:
            typer(SURROGATE_TEXT, **call)
        assert str(caught.value).startswith(SURROGATE_MESSAGE) and "replace the surrogate" in str(caught.value)
    assert typer(SURROGATE_TEXT, span=(4, 9), errors="return")["error"].startswith(SURROGATE_MESSAGE)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_a_lone_surrogate_in_a_list_is_found_before_the_model_runs(typer, batch_size):
    batch = [OK, {"text": SURROGATE_TEXT, "start": 4, "end": 9}, OK]
    with counting_forward_calls(typer.model) as calls, pytest.raises(EntityTypingInputError) as caught:
        typer(batch, batch_size=batch_size)
    assert calls[0] == 0 and list(caught.value.problems) == [1]
    assert str(caught.value).startswith("1 of 3 inputs are invalid, so none was typed.")
    assert f"item 1: {SURROGATE_MESSAGE}" in str(caught.value)
    results = typer(batch, batch_size=batch_size, errors="return")
    assert results[1]["index"] == 1 and results[1]["error"].startswith(SURROGATE_MESSAGE)
    with pytest.raises(EntityTypingInputError, match=r"item 1: In a batch each input is a dict, got the bare text 'x"):
        typer([OK, SURROGATE_TEXT])  # the first thing to fix is the missing dict
    assert same_result(results[0], typer(OK)) and same_result(results[2], typer(OK))


def test_a_lone_surrogate_in_a_stream_names_its_index(typer):
    rows = [OK, {"text": SURROGATE_TEXT, "span": (4, 9)}]
    with pytest.raises(EntityTypingInputError, match=r"^Input 1 is invalid: `text` holds the lone surrogate \\ud800"):
        list(typer((row for row in rows), batch_size=1))


@pytest.mark.parametrize(
    "candidate_labels, message",
    [
        (["city", "a\udc80b"], r"^Label 1 \('a\\udc80b'\) holds the lone surrogate \\udc80 at character 1"),
        ({"city": "big \ud83d town"}, r"^The phrase of label 'city' holds the lone surrogate \\ud83d at character 4"),
    ],
)
def test_a_lone_surrogate_in_candidate_labels_is_named(typer, candidate_labels, message):
    with counting_forward_calls(typer.model) as calls, pytest.raises(ValueError, match=message):
        typer(TEXT, span=(0, 10), candidate_labels=candidate_labels)
    with pytest.raises(ValueError, match=message):
        typer([OK], candidate_labels=candidate_labels, errors="return")
    assert calls[0] == 0


@pytest.mark.parametrize("batch_size", ["2", 0, -1, 2.0, True])
def test_a_bad_batch_size_is_named_with_what_was_given(_tiny_model, tiny_tokenizer, typer, batch_size):
    message = rf"^`batch_size` must be a positive integer \(inputs per model call\), got {type(batch_size).__name__} "
    for inputs in ([OK, OK], OK, (row for row in [OK])):
        with pytest.raises(ValueError, match=message):
            typer(inputs, batch_size=batch_size)
    with pytest.raises(ValueError, match=message):
        pipeline("entity-typing", model=_tiny_model, tokenizer=tiny_tokenizer, batch_size=batch_size)


def test_a_list_item_failing_after_the_checks_does_not_claim_earlier_results_were_returned(typer, monkeypatch):
    """The list check covers every known problem; should encoding still fail, nothing of the list came back."""
    encode = typer.mention_encoder.encode

    def failing_encode(text, start, end):
        if text == "Paris is big.":
            raise ValueError("cannot encode this")
        return encode(text, start, end)

    monkeypatch.setattr(typer.mention_encoder, "encode", failing_encode)
    with pytest.raises(EntityTypingInputError) as caught:
        typer([OK, {"text": "Paris is big.", "span": (0, 5)}], batch_size=1)
    assert str(caught.value).startswith("Input 1 is invalid: cannot encode this (Nothing of the list was returned;")
    assert "earlier" not in str(caught.value)


def test_non_finite_scores_warn_once_naming_the_weights(_tiny_model, tiny_tokenizer, typer, caplog):
    model = copy.deepcopy(_tiny_model).eval()
    with torch.no_grad():
        model.type_encoder.layer_norm.weight.fill_(float("nan"))
    broken = pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)
    logger = "modeling_entity_typing.pipelines.entity_typing"
    with caplog.at_level(logging.WARNING, logger=logger):
        results = broken([OK, OK, OK], batch_size=2)
        broken(OK)
        typer(OK)  # a sound model says nothing
    assert all(math.isnan(label["score"]) for result in results for label in result["labels"])
    warnings = [record.getMessage() for record in caplog.records if record.name == logger]
    assert len(warnings) == 1
    assert warnings[0].startswith("The model gave non-finite logits (NaN or inf) for 2 of 2 mentions of a batch")
    assert "Its weights probably hold NaN or inf (a damaged or badly converted checkpoint" in warnings[0]
