"""Model cards: the planned checkpoints' cards in `model_cards/` (metadata, honesty, commands the scripts accept)
and the Jinja template the Hub export renders (package data of `modeling_entity_typing.export`)."""

import dataclasses
import importlib.util
import json
import re
import shlex
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
from huggingface_hub import ModelCard
from transformers import HfArgumentParser

import modeling_entity_typing
from modeling_entity_typing.export.model_card import CARD_TEMPLATE, build_card_data, render_model_card


REPO_ROOT = Path(__file__).resolve().parents[1]
CARDS_DIR = REPO_ROOT / "model_cards"
PLANNED_CARDS = {
    "fivefine-base.md": {"base_model": "google-bert/bert-base-cased", "model_type": "fivefine"},
    "crossc-mbert-base.md": {"base_model": "google-bert/bert-base-multilingual-cased", "model_type": "crossc"},
}
BENCHMARKS = (REPO_ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")


def section(text: str, title: str) -> str:
    """The body of the `## title` section of a Markdown text."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no '## {title}' section"
    return match.group(1)


def shell_commands(text: str) -> list[list[str]]:
    """The commands of the card's ```bash blocks, continuation lines joined and comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        commands += [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]
    return [command for command in commands if command]


def script_options(script: Path) -> set[str]:
    """Every `--option` the example script's `HfArgumentParser` accepts (its `*Arguments` dataclasses)."""
    spec = importlib.util.spec_from_file_location(f"card_check_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    arguments = [
        value
        for name, value in vars(module).items()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and name.endswith("Arguments")
    ]
    assert arguments, f"{script.name} defines or imports no *Arguments dataclass"
    parser = HfArgumentParser(arguments)
    return {option for action in parser._actions for option in action.option_strings}


def test_every_card_in_the_folder_is_checked():
    found = {path.name for path in CARDS_DIR.glob("*.md")} - {"README.md"}
    assert found == set(PLANNED_CARDS), "add new cards to PLANNED_CARDS (or to a trained-card list) in this test"


@pytest.mark.parametrize("name", sorted(PLANNED_CARDS))
def test_planned_card_metadata(name):
    card = ModelCard.load(CARDS_DIR / name)
    data, expected = card.data, PLANNED_CARDS[name]
    assert data.license and data.library_name == "modeling_entity_typing"
    assert "entity-typing" in data.tags and expected["model_type"] in data.tags
    assert data.base_model == expected["base_model"]
    assert data.datasets and data.language
    assert data.get("pipeline_tag") is None  # "entity-typing" is not a Hub task; a wrong tag would mislead
    # not trained: the metadata must not claim any result (paper numbers included)
    assert data.eval_results is None and "model-index" not in data.to_dict()


@pytest.mark.parametrize("name", sorted(PLANNED_CARDS))
def test_planned_card_says_it_is_untrained_and_cites_both_papers(name):
    text = ModelCard.load(CARDS_DIR / name).text
    assert "has **not been trained**" in text.split("## ")[0]  # in the opening status note
    citation = section(text, "Citation")
    assert "From Ultra-Fine to Fine: Fine-tuning Ultra-Fine Entity Typing Models to Fine-grained" in citation
    assert "Dai, Hongliang and Zeng, Ziqian" in citation and "2023" in citation
    assert "Cross-Lingual Contrastive Learning for Fine-Grained Entity Typing for Low-Resource Languages" in citation
    assert "Han, Xu" in citation and "2022" in citation
    for mode in ("pipeline_class=EntityTypingPipeline", "trust_remote_code=True"):
        assert mode in section(text, "Usage")


@pytest.mark.parametrize("name", sorted(PLANNED_CARDS))
def test_evaluation_shows_only_benchmark_or_labelled_paper_numbers(name):
    evaluation = section(ModelCard.load(CARDS_DIR / name).text, "Evaluation")
    for number in re.findall(r"\d+\.\d+", evaluation):
        assert re.search(rf"(?<![\d.]){re.escape(number)}(?!\.?\d)", BENCHMARKS), f"{number} not in BENCHMARKS.md"
    rows = [line for line in evaluation.splitlines() if line.startswith("| ") and not line.startswith("| source")]
    for row in rows:
        assert row.startswith(("| paper:", "| MiniLM, this package")), f"unlabelled result row: {row}"


@pytest.mark.parametrize("name", sorted(PLANNED_CARDS))
def test_training_commands_use_only_flags_the_scripts_accept(name):
    commands = shell_commands(section(ModelCard.load(CARDS_DIR / name).text, "Training"))
    checked = 0
    for command in commands:
        scripts = [index for index, token in enumerate(command) if re.fullmatch(r"examples/\w+\.py", token)]
        if not scripts:
            continue
        script = REPO_ROOT / command[scripts[0]]
        assert script.is_file(), f"{name} runs {script.name}, which does not exist"
        if command[0] == "accelerate":
            assert command[1] == "launch"
        flags = {token.split("=")[0] for token in command[scripts[0] + 1 :] if token.startswith("--")}
        unknown = flags - script_options(script)
        assert not unknown, f"{name}: {script.name} does not accept {sorted(unknown)}"
        checked += 1
    assert checked >= 2, f"{name} shows fewer than two runnable training commands"


def tiny_config(model_type: str):
    labels = {0: "/person", 1: "/person/artist", 2: "/location"}
    if model_type == "fivefine":
        from tiny import get_tiny_fivefine_config

        return get_tiny_fivefine_config(id2label=labels)
    if not hasattr(modeling_entity_typing, "CrossCConfig"):
        pytest.skip("modeling_entity_typing has no CrossCConfig yet")
    return modeling_entity_typing.CrossCConfig(id2label=labels)


@pytest.mark.parametrize("model_type", ["fivefine", "crossc"])
def test_template_renders_every_variable_and_metadata_round_trips(model_type, monkeypatch):
    config = tiny_config(model_type)
    results = {"test_strict_accuracy": 0.5, "test_macro_f1": 0.625, "dev_macro_f1": 0.75, "test_num_mentions": 4}
    rendered_with = {}
    original = ModelCard.from_template.__func__

    def spy(cls, card_data, **kwargs):
        rendered_with.update(card_data.to_dict(), **kwargs)
        return original(cls, card_data, **kwargs)

    monkeypatch.setattr(ModelCard, "from_template", classmethod(spy))
    card_data = build_card_data(config, results, "org/x", base_model="bert-base-cased", dataset_name="D")
    card = ModelCard(str(render_model_card(card_data, config, results, "org/x", dataset_name="D")))

    template = CARD_TEMPLATE.read_text(encoding="utf-8")
    variables = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template))
    assert variables <= set(rendered_with) | {"card_data"}, variables - set(rendered_with)
    scores = {(result.metric_name, result.dataset_split): result.metric_value for result in card.data.eval_results}
    assert scores == {("Strict accuracy", "test"): 0.5, ("Macro F1 (loose)", "test"): 0.625}
    assert card.data.library_name == "modeling_entity_typing" and "entity-typing" in card.data.tags
    family = {"fivefine": "A **FiveFine** entity typing model", "crossc": "A **Cross-C** entity typing model"}
    assert family[model_type] in card.text
    assert "| test | 4 | 50.00 | 62.50 |" in card.text and "| dev |  |  | 75.00 |" in card.text
    assert "Dai, Hongliang" in card.text and "Han, Xu" in card.text


@pytest.mark.parametrize(
    ("type_space", "phrase"), [("mlm", "the vector at `[MASK]`"), ("encoder", "encoder type space")]
)
def test_fivefine_card_describes_its_type_space(type_space, phrase):
    from tiny import get_tiny_fivefine_config

    config = get_tiny_fivefine_config(id2label={0: "person"}, type_space=type_space)
    card = render_model_card(build_card_data(config, {}, "org/x"), config, {}, "org/x")
    assert phrase in card.text


def test_card_without_results_has_no_model_index():
    config = tiny_config("fivefine")
    card_data = build_card_data(config, {}, "org/x")
    card = ModelCard(str(render_model_card(card_data, config, {}, "org/x")))
    assert card.data.eval_results is None and "model-index" not in card.data.to_dict()
    assert "No evaluation results were recorded" in card.text


def test_template_is_package_data_and_template_path_replaces_it(tmp_path):
    assert Path(str(CARD_TEMPLATE)).is_relative_to(Path(modeling_entity_typing.__file__).parent)
    config = tiny_config("fivefine")
    card_data = build_card_data(config, {}, "org/x")
    custom = tmp_path / "card.md"
    custom.write_text("---\n{{ card_data }}\n---\n\n# {{ repo_id }}, a custom card\n", encoding="utf-8")
    card = render_model_card(card_data, config, {}, "org/x", template_path=custom)
    assert "# org/x, a custom card" in card.text and card.data.library_name == "modeling_entity_typing"
    with pytest.raises(FileNotFoundError, match="missing.md not found; pass an existing file"):
        render_model_card(card_data, config, {}, "org/x", template_path=tmp_path / "missing.md")


def test_a_zero_shot_table_file_is_checked_with_its_row(tmp_path):
    from modeling_entity_typing.export.model_card import ZeroShotTable

    path = tmp_path / "table.json"
    with pytest.raises(ValueError, match="not a readable JSON file.*bench_zero_shot_schemas"):
        ZeroShotTable.read(path)
    path.write_text('{"rows": []}')
    with pytest.raises(ValueError, match="no `rows`"):
        ZeroShotTable.read(path)
    row = {"schema": "figer", "name": "FIGER", "mentions": 1, "labels": 2, "headline": "micro_f1", "systems": {}}
    path.write_text(json.dumps({"rows": [row]}))
    with pytest.raises(ValueError, match=r"row 0 \(figer\) lacks \['systems.general'\]"):
        ZeroShotTable.read(path)
