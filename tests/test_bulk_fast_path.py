"""`--fast auto` keeps the fastest path whose top labels agree with fp32's on this CPU, decided by the CPU's features
and a self-check (never by the test machine), records why, and a resumed run types with the path it started with."""

import json
import time

import pytest
import torch
from bulk_fixtures import MENTIONS, one_thread_fixture, run_bulk, tiny_fixture, tiny_folder_fixture, write_jsonl  # noqa: F401  (fixtures)

from modeling_entity_typing.bulk import fast_path
from modeling_entity_typing.bulk.fast_path import choose_fast_path
from modeling_entity_typing.bulk.runner import first_mentions
from modeling_entity_typing.mention_encoding import EncodedMention


LABELS = 6


def _sample(count: int) -> list[EncodedMention]:
    return [
        EncodedMention([101, *range(2, 3 + number % 5), number, 102], 1, False, False, 0, 0) for number in range(count)
    ]


class FakeScorer:
    """Probabilities with a known top label per mention (`id % LABELS`), moved to another label for every
    `flip_every`-th mention; each batch takes `seconds`."""

    def __init__(self, name: str, seconds: float, flip_every: int | None = None):
        self.name, self.seconds, self.flip_every = name, seconds, flip_every

    def __call__(self, encoded):
        time.sleep(self.seconds)
        probabilities = torch.full((len(encoded), LABELS), 0.1)
        for row, mention in enumerate(encoded):
            identity = mention.input_ids[-2]
            top = identity % LABELS
            if self.flip_every and identity % self.flip_every == 0:
                top = (top + 1) % LABELS
            probabilities[row, top] = 0.9
        return probabilities


def _builder(scorers: dict, built: list):
    def build(name):
        built.append(name)
        if isinstance(scorers[name], Exception):
            raise scorers[name]
        return scorers[name]

    return build


def test_auto_falls_back_when_int8_changes_top_labels_on_this_cpu():
    scorers = {
        "fp32": FakeScorer("fp32", 0.02),
        "bf16": FakeScorer("bf16", 0.01),
        "int8": FakeScorer("int8", 0.004, 10),
    }
    built = []
    scorer, choice = choose_fast_path("auto", _builder(scorers, built), _sample(40), 20, needed=40,
                                      bf16_native=True, int8_installed=True)  # fmt: skip
    assert choice.candidates["int8"]["agreement"] == pytest.approx(0.9) and not choice.candidates["int8"]["accepted"]
    assert "speed_vs_fp32" not in choice.candidates["int8"]  # a path that changes answers is not even timed
    assert choice.candidates["bf16"]["agreement"] == 1.0 and choice.candidates["bf16"]["speed_vs_fp32"] > 1
    assert scorer is scorers["bf16"] and choice.chosen == "bf16" and choice.checked_mentions == 40
    assert choice.to_dict()["cpu"]["model"]  # the CPU that decided is recorded


def test_auto_takes_int8_when_it_agrees_and_skips_bf16_without_native_bf16():
    scorers = {"fp32": FakeScorer("fp32", 0.02), "bf16": FakeScorer("bf16", 0.001), "int8": FakeScorer("int8", 0.005)}
    built = []
    scorer, choice = choose_fast_path("auto", _builder(scorers, built), _sample(40), 20, needed=40,
                                      bf16_native=False, int8_installed=True)  # fmt: skip
    assert "bf16" not in built and "no native bf16" in choice.candidates["bf16"]["note"]
    assert choice.chosen == "int8" and choice.candidates["int8"]["agreement"] == 1.0


def test_auto_keeps_fp32_when_nothing_else_can_run_or_too_few_mentions():
    scorers = {"fp32": FakeScorer("fp32", 0.0), "bf16": RuntimeError("no bf16 kernels"), "int8": FakeScorer("int8", 0)}
    built = []
    _, choice = choose_fast_path("auto", _builder(scorers, built), _sample(8), 4, needed=8,
                                 bf16_native=True, int8_installed=False)  # fmt: skip
    assert choice.chosen == "fp32" and "failed" in choice.candidates["bf16"]["note"]
    assert "not installed" in choice.candidates["int8"]["note"] and built == ["fp32", "bf16"]
    built.clear()
    _, choice = choose_fast_path("auto", _builder(scorers, built), _sample(5), 4, needed=8)
    assert choice.chosen == "fp32" and built == ["fp32"] and "fewer than 8 mentions" in choice.reason
    built.clear()
    _, choice = choose_fast_path("int8", _builder(scorers, built), _sample(5), 4, needed=8)
    assert choice.chosen == "int8" and choice.reason == "asked for" and built == ["int8"]


def test_a_run_records_its_choice_and_resumes_with_it(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(fast_path, "cpu_supports_bf16", lambda: True)  # bf16 runs everywhere, emulated if need be
    monkeypatch.setattr(fast_path, "int8_available", lambda: False)  # the ONNX export takes seconds: slow set
    data = write_jsonl(tmp_path / "in.jsonl", repeat=3)
    manifest, rows = run_bulk(tiny, data, tmp_path / "out", fast="auto", self_check_mentions=16, top_k=2)
    choice = manifest["fast_path"]
    accepted = {name: c for name, c in choice["candidates"].items() if c["accepted"]}
    assert choice["requested"] == "auto" and choice["chosen"] in accepted and choice["checked_mentions"] == 16
    assert accepted[choice["chosen"]]["speed_vs_fp32"] == max(c["speed_vs_fp32"] for c in accepted.values())
    assert all(c["agreement"] >= choice["min_agreement"] for c in accepted.values())
    # a resumed run does not check again: it types with the stored choice
    (tmp_path / "out" / "manifest.json").unlink()
    (tmp_path / "out" / "shards").mkdir()
    stored = {"fingerprint": manifest["fingerprint"], "fast_path": {**choice, "chosen": "fp32"}}
    (tmp_path / "out" / "shards" / "run.json").write_text(json.dumps(stored))
    monkeypatch.setattr("modeling_entity_typing.bulk.runner.choose_fast_path", None)  # would fail if called
    resumed, _ = run_bulk(tiny, data, tmp_path / "out", fast="auto", self_check_mentions=16, top_k=2)
    assert resumed["fast_path"]["chosen"] == "fp32" and resumed["throughput"]["resumed"]


def test_the_self_check_reads_the_first_good_mentions(tiny, tmp_path):
    from modeling_entity_typing.bulk import InputSpec, open_source

    lines = [json.dumps({"text": "no mention here", "span": "Paris"})] + [
        json.dumps({"text": text, "span": [start, end]}) for text, start, end in MENTIONS
    ]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    source = open_source(InputSpec((str(tmp_path / "in.jsonl"),)), recover=False)
    model, tokenizer = tiny
    encoder = model.get_mention_encoder(tokenizer)
    sample = first_mentions(source, encoder, tokenizer, 3)
    assert [e.input_ids for e in sample] == [e.input_ids for e in encoder.encode_batch(MENTIONS[:3])]


@pytest.mark.slow
def test_int8_and_bf16_paths_on_a_real_export(tiny, tmp_path):
    """The real int8 graph (ONNX export, seconds) and bf16 copy type the file; their top labels are measured against
    fp32 by the self-check, whatever this CPU decides."""
    data = write_jsonl(tmp_path / "in.jsonl", repeat=4)
    _, fp32 = run_bulk(tiny, data, tmp_path / "fp32", top_k=1)
    for path in ("int8", "bf16"):
        manifest, rows = run_bulk(tiny, data, tmp_path / path, fast=path, top_k=1)
        assert manifest["fast_path"]["chosen"] == path and len(rows) == len(fp32)
        agreement = sum(a["labels"] == b["labels"] for a, b in zip(rows, fp32)) / len(rows)
        assert agreement >= 0.5, (path, agreement)
    manifest, _ = run_bulk(tiny, data, tmp_path / "auto", fast="auto", self_check_mentions=16, top_k=1)
    assert set(manifest["fast_path"]["candidates"]) == {"fp32", "bf16", "int8"}
