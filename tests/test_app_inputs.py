"""The browser demo's input handling (`examples/app/app.py`), called directly on the tiny pipeline: no server, no
browser, no gradio (the real page is tested in the slow set, `test_app_browser.py`)."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest


APP = Path(__file__).resolve().parents[1] / "examples" / "app" / "app.py"
spec = importlib.util.spec_from_file_location("entity_typing_app", APP)
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)

TEXT = "Paris wrote to Mark Twain, and Paris is a big city."
SECOND_PARIS = (TEXT.rindex("Paris"), TEXT.rindex("Paris") + len("Paris"))


def test_candidate_labels_split_on_commas_and_lines():
    assert app.parse_labels(" writer, city\nsports team,,\n ") == ["writer", "city", "sports team"]
    assert app.parse_labels("") is None and app.parse_labels(None) is None and app.parse_labels(" ,\n") is None


def test_number_boxes():
    assert app.parse_number("", "`top_k`") is None and app.parse_number("  ", "`top_k`") is None
    assert app.parse_number("3", "`top_k`") == 3 and isinstance(app.parse_number("3", "`top_k`"), int)
    assert app.parse_number("0.25", "`threshold`") == 0.25
    assert app.parse_number("1.5", "`threshold`") == 1.5  # out of range: the pipeline says so, not the app
    with pytest.raises(ValueError, match=r"`threshold` must be a number, got 'high'"):
        app.parse_number("high", "`threshold`")


def test_a_selection_counts_while_the_mention_box_still_holds_it():
    assert app.choose_span(TEXT, "Paris", SECOND_PARIS) == SECOND_PARIS
    assert app.choose_span(TEXT, "Mark Twain", SECOND_PARIS) == "Mark Twain"  # the box was edited since
    assert app.choose_span(TEXT, "Paris", None) == "Paris"
    assert app.choose_span(TEXT, None, None) == ""


def test_results_are_the_pipeline_results(typer):
    outcome = app.type_mention(typer, TEXT, "Mark Twain", top_k="3")
    expected = typer(TEXT, span="Mark Twain", top_k=3)
    assert outcome.scores == {item["label"]: item["score"] for item in expected["labels"]}
    assert len(outcome.scores) == 3
    start, end = expected["span"]
    assert outcome.highlighted == [
        (TEXT[:start], None),
        ("Mark Twain", expected["labels"][0]["label"]),
        (TEXT[end:], None),
    ]
    assert outcome.status == f"Typed **Mark Twain** (characters {start} to {end})."


def test_selected_offsets_type_the_second_occurrence(typer):
    outcome = app.type_mention(typer, TEXT, "Paris", SECOND_PARIS, threshold="0")
    expected = typer(TEXT, span=SECOND_PARIS, threshold=0.0)
    assert outcome.scores == {item["label"]: item["score"] for item in expected["labels"]}
    assert f"(characters {SECOND_PARIS[0]} to {SECOND_PARIS[1]})" in outcome.status
    assert outcome.scores != {
        item["label"]: item["score"] for item in typer(TEXT, span="Paris", threshold=0.0)["labels"]
    }


def test_candidate_labels_are_typed(typer):
    outcome = app.type_mention(typer, TEXT, "Mark Twain", labels="writer\ncity", threshold="0")
    expected = typer(TEXT, span="Mark Twain", candidate_labels=["writer", "city"], threshold=0.0)
    assert outcome.scores == {item["label"]: item["score"] for item in expected["labels"]}
    assert set(outcome.scores) == {"writer", "city"}


def test_truncation_is_reported(typer):
    text = "a " * 100 + "Paris" + " b" * 100
    assert typer(text, span=(200, 205))["truncated"]
    outcome = app.type_mention(typer, text, "Paris")
    assert "`truncated`" in outcome.status and "`mention_truncated`" not in outcome.status
    assert "`truncated`" not in app.type_mention(typer, TEXT, "Paris").status


@pytest.mark.parametrize(
    ("text", "mention", "threshold", "top_k", "call"),
    [
        (TEXT, "Zurich", "", "", {"span": "Zurich"}),
        ("", "Paris", "", "", {"span": "Paris"}),
        (TEXT, "", "", "", {"span": ""}),
        (TEXT, "Paris", "1.5", "", {"span": "Paris", "threshold": 1.5}),
        (TEXT, "Paris", "", "0", {"span": "Paris", "top_k": 0}),
    ],
    ids=["mention-not-in-text", "empty-text", "empty-mention", "threshold-out-of-range", "top-k-zero"],
)
def test_bad_input_shows_the_pipeline_message(typer, text, mention, threshold, top_k, call):
    with pytest.raises(ValueError) as raised:
        typer(text, **call)
    outcome = app.type_mention(typer, text, mention, threshold=threshold, top_k=top_k)
    assert outcome.status == f"**Error:** {app.escape_markdown(str(raised.value))}"
    assert outcome.scores == {} and outcome.highlighted == []


def test_a_non_number_is_refused_before_the_pipeline(typer):
    outcome = app.type_mention(typer, TEXT, "Paris", threshold="high")
    assert outcome.status == "**Error:** " + app.escape_markdown("`threshold` must be a number, got 'high'.")


def test_markdown_escaping_keeps_every_character():
    message = "`threshold` is a probability in [0, 1], got 1.5 (*_#|<>!-+~)."
    escaped = app.escape_markdown(message)
    assert escaped.replace("\\", "") == message.replace("\\", "")
    assert all(escaped[index - 1] == "\\" for index, char in enumerate(escaped) if char in "`*_[]()#|<>!-+~")


@pytest.mark.parametrize("where", ["default", "absolute"])
def test_a_missing_model_says_how_to_build_it(tmp_path, where):
    """`outputs/demo` (relative to the working directory) or a given folder: a message and exit 2, no traceback."""
    args = [] if where == "default" else ["--model", str(tmp_path / "no-model")]
    env = {key: value for key, value in os.environ.items() if key != app.MODEL_ENV}
    result = subprocess.run(
        [sys.executable, str(APP), *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert result.returncode == 2
    assert "make demo" in result.stderr and ("outputs/demo" if where == "default" else "no-model") in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_without_a_model_is_refused_with_the_reason(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(app.ModelLoadError, match=r"(?s)Could not load an entity-typing model from .*make demo"):
        app.load_typer(str(tmp_path))


def test_model_and_host_arguments(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no outputs/ here: the default is the demo model's folder
    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    assert app.parse_args([]).model == "outputs/demo" and app.parse_args([]).host == "127.0.0.1"
    monkeypatch.setenv(app.MODEL_ENV, "elsewhere")
    assert app.parse_args([]).model == "elsewhere"
    assert app.parse_args(["--model", "there"]).model == "there"


@pytest.mark.parametrize(
    ("text", "mention", "labels", "call", "named"),
    [
        ("Paris \ud800 is big.", "Paris", "", {"span": "Paris"}, "`text` holds the lone surrogate \\ud800 at"),
        (
            TEXT,
            "Paris",
            "city, riv\udc00er",
            {"span": "Paris", "candidate_labels": ["city", "riv\udc00er"]},
            "holds the lone surrogate \\udc00 at character 3",
        ),
    ],
    ids=["in-the-text", "in-a-label"],
)
def test_a_lone_surrogate_shows_the_pipeline_message_naming_it(typer, text, mention, labels, call, named):
    """A browser can send half of a UTF-16 pair (pasted broken text); the page names it, and its own reply stays
    encodable (a raw surrogate in the status would break the response instead)."""
    with pytest.raises(ValueError) as raised:
        typer(text, **call)
    assert named in str(raised.value)
    outcome = app.type_mention(typer, text, mention, labels=labels)
    assert outcome.status == f"**Error:** {app.escape_markdown(str(raised.value))}"
    outcome.status.encode("utf-8")  # no raw surrogate goes back to the browser


def test_the_general_model_is_served_when_make_model_built_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert app.default_model() == app.DEMO_MODEL
    Path(tmp_path, app.GENERAL_MODEL).mkdir(parents=True)
    assert app.default_model() == app.DEMO_MODEL  # an empty folder is not a model
    Path(tmp_path, app.GENERAL_MODEL, "config.json").write_text("{}")
    assert app.default_model() == app.GENERAL_MODEL
    monkeypatch.setenv(app.MODEL_ENV, "elsewhere")
    assert app.parse_args([]).model == "elsewhere"
