"""Try an entity typer in a browser: a Gradio page around `pipeline("entity-typing")`.

    python examples/app/app.py                      # the general model of `make model`, else `make demo`'s
    python examples/app/app.py --model path/to/model --port 7861
    ENTITY_TYPING_MODEL=org/name python examples/app/app.py   # a folder or, with network, a Hub model

Write a text, pick the mention by selecting it in the text (or type it), optionally give your own labels, and press
the button: the page shows the types with their scores. Bad input shows the pipeline's own message.
"""

import argparse
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


GENERAL_MODEL = "outputs/fivefine-minilm-ufet"  # `make model`: any label set, types and examples at call time
DEMO_MODEL = "outputs/demo"  # `make demo`: 16 OntoNotes-style types, built in minutes
MODEL_ENV = "ENTITY_TYPING_MODEL"
# text, mention, candidate labels, threshold, top k
EXAMPLES = [
    ["Marie Curie studied radioactivity in Paris.", "Marie Curie", "", "", "3"],
    ["Serena Williams won the final in straight sets.", "Serena Williams", "", "", "3"],
    ["Real Madrid signed a young striker from Brazil.", "Real Madrid", "", "0.2", ""],
    ["Vincent van Gogh painted The Starry Night in 1889.", "The Starry Night", "", "", ""],
    ["Marie Curie studied radioactivity in Paris.", "Marie Curie", "chemist, novelist, river, city", "0", ""],
]

logger = logging.getLogger("entity_typing_app")


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says how to get one."""


@dataclass
class Outcome:
    """What the page shows for one request: scores by label, the text split around the mention, a status line."""

    scores: dict[str, float] = field(default_factory=dict)
    highlighted: list[tuple[str, str | None]] = field(default_factory=list)
    status: str = ""


def parse_labels(text: str | None) -> list[str] | None:
    """Candidate labels from a box: comma-separated or one per line; `None` (the model's own labels) if empty."""
    labels = [label.strip() for label in re.split(r"[,\n]", text or "")]
    return [label for label in labels if label] or None


def choose_span(text: str, mention: str | None, selection: tuple[int, int] | None) -> tuple[int, int] | str:
    """The `span` to pass: the selected offsets while the mention box still holds the selected characters (so a
    second occurrence can be typed), else the mention string, which the pipeline finds (and checks) itself.

    The browser counts offsets in UTF-16 units, so after characters outside the BMP (emoji) they no longer match
    Python's; the check against the mention falls back to the string then.
    """
    mention = mention or ""
    if selection is not None and mention:
        start, end = selection
        if text[start:end] == mention:
            return start, end
    return mention


def parse_number(text: str | None, name: str) -> int | float | None:
    """A number box's value: `None` if empty, else the int or float written. Only text that is no number at all is
    refused here; the range is the pipeline's to check, so its own message reports `1.5` or `0`."""
    text = (text or "").strip()
    if not text:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    raise ValueError(f"{name} must be a number, got {text!r}.")


def pipeline_options(threshold: str | None, top_k: str | None, labels: str | None) -> dict[str, Any]:
    """Pipeline options from the page's boxes; an empty box is left out (the model's rule, the model's labels)."""
    options = {
        "threshold": parse_number(threshold, "`threshold`"),
        "top_k": parse_number(top_k, "`top_k`"),
        "candidate_labels": parse_labels(labels),
    }
    return {name: value for name, value in options.items() if value is not None}


def escape_markdown(text: str) -> str:
    """Backslash-escape Markdown punctuation, so a message shows exactly as the pipeline wrote it."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|<>~])", r"\\\1", text)


def type_mention(
    typer: Any,
    text: str | None,
    mention: str | None,
    selection: tuple[int, int] | None = None,
    labels: str | None = None,
    threshold: str | None = None,
    top_k: str | None = None,
) -> Outcome:
    """Run the pipeline on the page's inputs and format its result, or its `ValueError`/`TypeError`, for the page."""
    text = text or ""
    span = choose_span(text, mention, selection)
    try:
        options = pipeline_options(threshold, top_k, labels)
        result = typer(text, span=span, **options)
    except (ValueError, TypeError) as error:
        logger.info("bad input (span %r): %s", span, error)
        return Outcome(status=f"**Error:** {escape_markdown(str(error))}")
    start, end = result["span"]
    types = [item["label"] for item in result["labels"]]
    highlighted = [(text[:start], None), (text[start:end], types[0]), (text[end:], None)]  # the best type
    notes = [f"Typed **{escape_markdown(result['mention'])}** (characters {start} to {end})."]
    if result["truncated"]:
        notes.append("The context was cut to a window around the mention to fit the model (`truncated`).")
    if result["mention_truncated"]:
        notes.append("The mention itself was too long and was cut (`mention_truncated`).")
    logger.info("typed %r at %s with %r: %s", result["mention"], result["span"], options, types)
    return Outcome(
        scores={item["label"]: item["score"] for item in result["labels"]},
        highlighted=[(piece, tag) for piece, tag in highlighted if piece],
        status=" ".join(notes),
    )


def load_typer(model: str) -> Any:
    """The pipeline on a saved model folder (or a Hub name); `ModelLoadError` saying what to do if it cannot load."""
    if not Path(model).is_dir() and (model in (GENERAL_MODEL, DEMO_MODEL) or Path(model).is_absolute()):
        raise ModelLoadError(
            f"No model folder at {model!r}. Build the general model with `make model` (it writes {GENERAL_MODEL}) or "
            f"the demo model with `make demo` (about 3 minutes; it writes {DEMO_MODEL}), or pass a saved model with "
            f"--model PATH or {MODEL_ENV}=PATH."
        )
    from transformers import pipeline

    import modeling_entity_typing  # noqa: F401  (registers the "entity-typing" task)

    try:
        return pipeline("entity-typing", model=model)
    except (OSError, ValueError, TypeError) as error:
        raise ModelLoadError(
            f"Could not load an entity-typing model from {model!r}: {error}\nBuild the demo model with `make demo`, "
            "or pass a folder saved by this package's training scripts (save_pretrained) with --model PATH."
        ) from None


def build_demo(typer: Any, model_name: str) -> Any:
    """The page: inputs on the left, the types on the right, examples below."""
    import gradio as gr

    def on_select(event: gr.SelectData) -> tuple[Any, Any]:
        """A selection in the text fills the mention box and keeps its offsets; a bare click changes nothing."""
        if not event.value or not event.value.strip():
            return gr.skip(), gr.skip()
        if not isinstance(event.index, (list, tuple)) or len(event.index) != 2:
            return event.value, None
        return event.value, (int(event.index[0]), int(event.index[1]))

    def on_submit(text, mention, selection, labels, threshold, top_k):
        outcome = type_mention(typer, text, mention, selection, labels, threshold, top_k)
        return outcome.scores or None, outcome.highlighted or None, outcome.status

    with gr.Blocks(title="Entity typing", analytics_enabled=False) as demo:
        gr.Markdown(f"# Entity typing\nModel: `{model_name}`. Select the mention in the text, or type it.")
        selection = gr.State(None)
        with gr.Row():
            with gr.Column():
                text = gr.Textbox(label="Text", lines=3, elem_id="text")
                mention = gr.Textbox(label="Mention (select it in the text, or type it)", elem_id="mention")
                labels = gr.Textbox(
                    label="Candidate labels (optional; comma-separated or one per line)", lines=2, elem_id="labels"
                )
                with gr.Row():
                    threshold = gr.Textbox(label="Threshold (empty: the model's rule)", elem_id="threshold")
                    top_k = gr.Textbox(label="Top k (empty: no cap)", elem_id="top-k")
                button = gr.Button("Type the mention", variant="primary", elem_id="submit")
            with gr.Column():
                status = gr.Markdown(elem_id="status")
                spans = gr.HighlightedText(label="Mention and its types", elem_id="spans")
                scores = gr.Label(label="Types and scores", elem_id="scores")
        gr.Examples(
            EXAMPLES,
            [text, mention, labels, threshold, top_k],
            example_labels=[
                row[0].replace(row[1], f"[{row[1]}]", 1) + (" + own labels" if row[2] else "") for row in EXAMPLES
            ],
        )
        text.select(on_select, None, [mention, selection])
        button.click(on_submit, [text, mention, selection, labels, threshold, top_k], [scores, spans, status])
    return demo


def default_model() -> str:
    """The general model when `make model` has built it, else the demo model (relative to the working directory)."""
    return GENERAL_MODEL if Path(GENERAL_MODEL, "config.json").is_file() else DEMO_MODEL


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV) or default_model(),
        help=f"a saved model folder (or a Hub name); default: ${MODEL_ENV}, else {GENERAL_MODEL} (`make model`) "
        f"when it exists, else {DEMO_MODEL} (`make demo`)",
    )
    parser.add_argument(
        "--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"), help="default: local only"
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        typer = load_typer(args.model)
    except ModelLoadError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    logger.info("serving %s on http://%s:%d", args.model, args.host, args.port)
    build_demo(typer, args.model).launch(server_name=args.host, server_port=args.port, ssr_mode=False)


if __name__ == "__main__":
    main()
