"""The zero-shot schema benchmark: Few-NERD labels and sample, the shared decision and scoring code, and a tiny run
over real schemas that gives rows of the documented shape (a null prototype where a schema has no training data)."""

import sys
from pathlib import Path

import pytest
import torch
from tiny import MENTIONS, get_tiny_fivefine_config, make_tiny_model
from transformers import BertConfig, BertModel, pipeline


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import bench_fet_baselines  # noqa: E402
import bench_zero_shot_schemas as bench  # noqa: E402

import modeling_entity_typing  # noqa: E402, F401  (registers the pipeline)
from modeling_entity_typing.calibration import PlattScaling  # noqa: E402
from modeling_entity_typing.data.mention_data import few_nerd_label  # noqa: E402


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ROW_KEYS = {"schema", "name", "test_file", "mentions", "labels", "rule", "headline", "systems", "notes"}
BIO = """Tom\tB-person_actor
Hanks\tI-person_actor
met\tO
the\tO
Ministry\tB-organization_government/governmentagency
of\tI-organization_government/governmentagency
Health\tI-organization_government/governmentagency
.\tO

Lake\tB-location_bodiesofwater
Geneva\tI-location_bodiesofwater
and\tO
Paris\tB-location_other
"""


def test_few_nerd_tags_read_as_coarse_fine_paths(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text(BIO)
    records = bench.records_of(path, "bio")
    spans = [(record["text"][record["start"] : record["end"]], record["labels"]) for record in records]
    assert spans == [
        ("Tom Hanks", ["/person/actor"]),
        ("Ministry of Health", ["/organization/government_governmentagency"]),
        ("Lake Geneva", ["/location/bodiesofwater"]),
        ("Paris", ["/location/other"]),
    ]
    # SOURCE.md's recovery (strip B-/I-, first `_` -> `-`) names the same labels, with the coarse type an ancestor
    original = "organization-government/governmentagency"
    assert few_nerd_label(original) == "/organization/government_governmentagency" == spans[1][1][0]
    assert bench_fet_baselines.with_ancestors(spans[1][1][0])[1] == "/organization"


def test_the_few_nerd_sample_is_fixed_by_its_seed():
    records = [{"id": str(index)} for index in range(500)]
    first, again = bench.sample_records(records, 40, seed=0), bench.sample_records(records, 40, seed=0)
    assert first == again and len(first) == 40
    assert [int(r["id"]) for r in first] == sorted(int(r["id"]) for r in first)  # file order
    assert bench.sample_records(records, 40, seed=1) != first
    assert bench.sample_records(records, 900, seed=0) == records


def test_prototype_cosines_pick_what_the_prototype_baseline_picks():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(30, 6, generator=generator)
    labels = [f"/t{index % 4}" for index in range(30)]
    test = torch.randn(12, 6, generator=generator)
    types, cosines = bench.prototype_cosines(train, labels, test)
    assert types == sorted(set(labels)) and cosines.shape == (12, 4)
    assert [types[i] for i in cosines.argmax(-1).tolist()] == bench_fet_baselines.predict_prototype(
        train, labels, test
    )


def test_the_models_are_scored_as_the_pipeline_scores_them(tiny_model, tiny_tokenizer):
    """Calibration included: the general model is calibrated, and a threshold tuned on dev reads its probabilities."""
    records = [{"id": str(row), "text": t, "start": s, "end": e} for row, (t, s, e) in enumerate(MENTIONS)]
    phrases = {"/person": "person", "/location/city": "city town", "/organization": "organization"}
    model = tiny_model.eval()
    PlattScaling(0.5, -1.0).write_to(model.config)
    vectors = bench.CachedVectors(lambda chunk: bench.baselines.mask_vectors(model, tiny_tokenizer, chunk))
    (probabilities,) = bench.model_probabilities(model, tiny_tokenizer, vectors, phrases, [records])
    typer = pipeline("entity-typing", model=model, tokenizer=tiny_tokenizer)
    outputs = typer([{"text": t, "span": (s, e)} for t, s, e in MENTIONS], candidate_labels=phrases, threshold=0.0)
    expected = [[{i["label"]: i["score"] for i in output["labels"]}[label] for label in phrases] for output in outputs]
    torch.testing.assert_close(probabilities, torch.tensor(expected), atol=1e-5, rtol=1e-5)


def schema(rule: str, labels: list[str], test: list[list[str]], dev: list[list[str]] | None = None) -> bench.Schema:
    """A schema of in-memory records (only their labels are read when scoring)."""
    records = [{"labels": gold} for gold in test]
    dev_records = None if dev is None else [{"labels": gold} for gold in dev]
    return bench.Schema("s", "S", Path("t"), records, labels, rule=rule, dev=dev_records)


def test_the_argmax_rule_adds_ancestors_and_scores_mistakes():
    labels = ["/a", "/a/b", "/c"]
    hierarchical = schema("argmax_with_ancestors", labels, [["/a", "/a/b"], ["/c"]])
    right = torch.tensor([[0.1, 0.9, 0.2], [0.1, 0.2, 0.3]])
    assert bench.decided(hierarchical, labels, right) == {"strict_accuracy": 1.0, "micro_f1": 1.0, "macro_f1": 1.0}
    wrong = torch.tensor([[0.9, 0.1, 0.2], [0.9, 0.2, 0.3]])  # `/a` for both: half right, then wrong
    scores = bench.decided(hierarchical, labels, wrong)
    assert scores["strict_accuracy"] == 0.0 and 0.0 < scores["micro_f1"] < 1.0


def test_the_threshold_rule_takes_the_threshold_dev_data_chooses():
    labels, gold = ["x", "y", "z"], [["x", "y"], ["z"]]
    multi_label = schema("threshold", labels, gold, dev=gold)
    # dev is typed right from 0.25 to 0.8 (x passes up to 0.82), so the highest of those, 0.8, is chosen
    dev_scores = torch.tensor([[0.82, 0.9, 0.1], [0.1, 0.2, 0.6]])
    test_scores = torch.tensor([[0.7, 0.9, 0.1], [0.1, 0.3, 0.95]])  # at 0.8, x is missed on test
    result = bench.decided(multi_label, labels, test_scores, dev_scores)
    assert result["threshold"] == 0.8 and result["dev_macro_f1"] == 1.0
    assert result["strict_accuracy"] == 0.5 and result["macro_f1"] < 1.0


def test_the_table_shows_headline_percentages_and_null_prototypes():
    row = {"schema": "figer", "mentions": 3, "labels": 9, "headline": "micro_f1"}
    row["systems"] = {"general": {"micro_f1": 0.5}, "plain_encoder": {"micro_f1": 0.25}, "prototype": None}
    assert bench.markdown_row(row) == "| figer | 3 | 9 | Mi-F1 | 50.00 | 25.00 | — |"
    row["headline"] = "macro_f1"
    row["systems"] = {name: {"macro_f1": 0.123, "threshold": 0.55} for name in bench.SYSTEMS}
    assert "| Ma-F1 | 12.30 (t=0.55) |" in bench.markdown_table([row])


@pytest.fixture
def tiny_checkpoints(tmp_path, tiny_tokenizer) -> tuple[str, str]:
    """A tiny FiveFine checkpoint (`--model`) and a tiny plain BERT (`--encoder`), saved with the tiny tokenizer."""
    model = tmp_path / "fivefine"
    make_tiny_model(tiny_tokenizer).save_pretrained(model)
    tiny_tokenizer.save_pretrained(model)
    fields = get_tiny_fivefine_config().to_dict()
    fields = {key: value for key, value in fields.items() if key in BertConfig().to_dict()}
    fields["max_position_embeddings"] = 512  # the frozen baseline reads up to 512 pieces
    encoder = tmp_path / "plain-bert"
    torch.manual_seed(0)
    BertModel(BertConfig(**fields), add_pooling_layer=False).save_pretrained(encoder)
    tiny_tokenizer.save_pretrained(encoder)
    return str(model), str(encoder)


@pytest.mark.needs_shared_data
def test_a_tiny_run_gives_rows_of_the_documented_shape(tiny_checkpoints):
    model, encoder = tiny_checkpoints
    rows = bench.zero_shot_rows(model, encoder, DATA, ["onto_fivefine", "figer", "open_entity"], limit=6)
    assert [row["schema"] for row in rows] == ["onto_fivefine", "figer", "open_entity"]
    for row in rows:
        assert ROW_KEYS <= set(row) and row["mentions"] == 6
        assert row["headline"] == {"argmax_with_ancestors": "micro_f1", "threshold": "macro_f1"}[row["rule"]]
        for name, system in row["systems"].items():
            if system is None:
                continue
            assert all(0.0 <= system[metric] <= 1.0 for metric in bench.METRICS), (row["schema"], name)
            assert ("threshold" in system) == (row["rule"] == "threshold")
    onto, figer, open_entity = rows
    assert onto["labels"] == 24 and onto["systems"]["prototype"] is not None
    assert figer["systems"]["prototype"] is None and "no FIGER training split" in figer["prototype_reason"]
    assert open_entity["labels"] == 9 and open_entity["systems"]["prototype"]["threshold_on"] == "cosine"
    assert any("dropped for having no general type: test 400" in note for note in open_entity["notes"])


@pytest.mark.needs_shared_data
def test_few_nerd_schema_is_the_17_test_types_with_their_5_shot_examples(monkeypatch):
    read, records_of = {}, bench.records_of

    def read_once(path, data_format, limit=None, **options):  # the 28k-entity file is read once, for speed
        key = (str(path), data_format, limit)
        if key not in read:
            read[key] = records_of(path, data_format, limit, **options)
        return read[key]

    monkeypatch.setattr(bench, "records_of", read_once)
    first = bench.load_schema("few_nerd", DATA, None, few_nerd_sample=30, seed=0)
    again = bench.load_schema("few_nerd", DATA, None, few_nerd_sample=30, seed=0)
    other = bench.load_schema("few_nerd", DATA, None, few_nerd_sample=30, seed=1)
    assert [r["id"] for r in first.test] == [r["id"] for r in again.test] != [r["id"] for r in other.test]
    assert len(first.test) == 30 and {label for r in first.test for label in r["labels"]} <= set(first.labels)
    assert len(first.labels) == 17 and "/organization/government_governmentagency" in first.labels
    assert {label for record in first.train for label in record["labels"]} == set(first.labels)
    assert len(first.train) == 85 and first.prototype_reason is None
