"""Every numeric argument of every example script has a declared range, checked at start (parsing only, no run).

The table is built from the scripts themselves: each `*Arguments` dataclass field and each argparse option whose
type is a number is found, its declared `Range` read, and values outside it (the bounds' neighbours, -1, 0, NaN,
infinities) must be refused with a message naming the option, the value and the range, before any output exists;
values on the bounds must be accepted. A numeric argument without a declared range fails the table. A string choice
is a `Literal` field, which the parser itself checks: each choice parses, any other value is refused with the list.
"""

import argparse
import dataclasses
import importlib.util
import math
import types
import typing
from pathlib import Path

import pytest
from transformers import HfArgumentParser

from modeling_entity_typing.training.training_args import Range, TrainingArguments, argument_ranges, check_ranges


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPT_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.py"))


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"ranges_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPTS = {name: load_script(name) for name in SCRIPT_NAMES}


def base_argv(script: str, command: str | None, folder: Path) -> list[str]:
    """The fewest arguments each script (and plot_results command) parses with; files are made in `folder`."""
    mentions = folder / "mentions.jsonl"
    mentions.write_text('{"text": "Paris is big.", "start": 0, "end": 5, "labels": ["/location"]}\n')
    types_file = folder / "types.txt"
    types_file.write_text("/location\n")
    model = folder / "model"
    model.mkdir(exist_ok=True)
    ufet = folder / "data" / "ufet"
    ufet.mkdir(parents=True, exist_ok=True)
    for name in ("train.json", "dev.json", "test.json", "types.txt"):
        (ufet / name).write_text(types_file.read_text() if name == "types.txt" else mentions.read_text())
    (model / "config.json").write_text("{}")
    out = str(folder / "out")
    table = {
        ("build_contrastive_data", None): ["--corpus", str(mentions), "--output", f"{out}.jsonl"],
        ("build_general_model", None): ["--data_dir", str(folder / "data"), "--output_dir", out],
        ("export_onnx", None): ["--model_dir", str(model), "--output_dir", out],
        ("finetune_fet", None): ["--output_dir", out],  # the bundled demo data
        ("fit_mlm_head", None): ["--train_file", str(mentions), "--output_dir", out],
        ("plot_results", "shots"): ["shots", "--system", "A=runs/*/all_results.json", "--output", f"{out}.png"],
        ("plot_results", "tsne"): [
            "tsne",
            "--model_dir",
            str(model),
            "--data_file",
            str(mentions),
            "--output",
            f"{out}.png",
        ],  # fmt: skip
        ("pretrain_contrastive", None): ["--train_file", str(mentions), "--output_dir", out],
        ("pretrain_ufet", None): [
            "--train_file",
            str(mentions),
            "--validation_file",
            str(mentions),
            "--types_file",
            str(types_file),
            "--output_dir",
            out,
        ],  # fmt: skip
        ("push_to_hub", None): ["--model_dir", str(model), "--repo_id", "org/name", "--output_dir", out],
        ("translate_mentions", None): ["--input", str(mentions), "--output", f"{out}.jsonl", "--direction", "en-pt"],
    }
    assert (script, command) in table, f"a new script or command: give {script} {command or ''} its argv here"
    return table[(script, command)]


# ------------------------------------------------------------------------------------------------ the table
@dataclasses.dataclass(frozen=True)
class Option:
    script: str
    command: str | None  # a plot_results sub-command
    name: str
    kind: type  # int or float
    range: Range | None  # None: not declared (a failure)
    optional: bool = False

    def __str__(self) -> str:
        return f"{self.script}{f' {self.command}' if self.command else ''} --{self.name}"


def numeric_kind(hint) -> type | None:
    """int or float for `int`, `float | None`, `list[int]`, ...; None for any other type (bool included)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = inner[0] if len(inner) == 1 else hint
    if typing.get_origin(hint) in (list, tuple, set):
        hint = typing.get_args(hint)[0]
    return hint if hint in (int, float) else None


def argument_classes(module) -> list[type]:
    """The argument dataclasses a script parses (the `*Arguments` in its namespace; checked by a test below)."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__name__.endswith("Arguments")
    ]


def dataclass_options(script: str) -> list[Option]:
    options = []
    for cls in argument_classes(SCRIPTS[script]):
        declared = argument_ranges(cls)
        for name, hint in typing.get_type_hints(cls).items():
            kind = numeric_kind(hint)
            if kind is not None:
                legal, optional = declared.get(name, (None, False))
                options.append(Option(script, None, name, kind, legal, optional))
    return options


def argparse_options(script: str) -> list[Option]:
    options = []

    def walk(parser: argparse.ArgumentParser, command: str | None) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, subparser in action.choices.items():
                    walk(subparser, name)
            elif action.type in (int, float) or hasattr(action.type, "range"):
                kind = getattr(action.type, "kind", action.type)
                options.append(Option(script, command, action.dest, kind, getattr(action.type, "range", None)))

    walk(SCRIPTS[script].build_parser(), None)
    return options


def script_options(script: str) -> list[Option]:
    return argparse_options(script) if hasattr(SCRIPTS[script], "build_parser") else dataclass_options(script)


OPTIONS = [option for script in SCRIPT_NAMES for option in script_options(script)]
RANGED = [option for option in OPTIONS if option.range is not None]


def as_text(value: float, kind: type) -> str:
    return str(kind(value))


def outside(option: Option) -> list[str]:
    """Values just past each bound, plus -1, 0, NaN and the infinities, where they are outside the range."""
    legal, kind = option.range, option.kind
    step = 1 if kind is int else 0.5
    candidates = [-1, 0]
    candidates += [legal.ge - step] if legal.ge is not None else []
    candidates += [legal.gt] if legal.gt is not None else []
    candidates += [legal.le + step] if legal.le is not None else []
    candidates += [legal.lt] if legal.lt is not None else []
    candidates += [math.nan, math.inf, -math.inf] if kind is float else []
    texts = [as_text(value, kind) for value in candidates if kind(value) not in legal]
    return list(dict.fromkeys(texts))


def inside(option: Option) -> list[str]:
    """The closed bounds, and values next to the open ones (the middle of a two-sided open range)."""
    legal, kind = option.range, option.kind
    low = legal.gt if legal.gt is not None else legal.ge
    high = legal.lt if legal.lt is not None else legal.le
    candidates = [bound for bound in (legal.ge, legal.le) if bound is not None]
    if legal.gt is not None or legal.lt is not None:
        if kind is float and low is not None and high is not None:
            candidates.append((low + high) / 2)
        else:
            candidates += [legal.gt + 1] if legal.gt is not None else []
            candidates += [legal.lt - 1] if legal.lt is not None else []
    if low is None and high is None:
        candidates += [0, -3.5 if kind is float else -3]
    values = [as_text(value, kind) for value in candidates]
    assert values and all(kind(value) in legal for value in values), (str(option), values)
    return list(dict.fromkeys(values))


def parse(option: Option, folder: Path, *extra: str):
    """The script's own parse of its fewest arguments plus `extra` (only parsing: nothing runs)."""
    return SCRIPTS[option.script].parse_args([*base_argv(option.script, option.command, folder), *extra])


def parsed_value(parsed, name: str):
    """The parsed value of `name` (of a list-valued option given one number: that number)."""
    holders = parsed if isinstance(parsed, tuple) else (parsed,)
    value = next(getattr(holder, name) for holder in holders if hasattr(holder, name))
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def option_id(option: Option) -> str:
    return str(option).replace(" ", "-")


# ------------------------------------------------------------------------------------------------ the tests
def test_the_table_covers_every_script_and_every_numeric_argument():
    assert SCRIPT_NAMES == [
        "build_contrastive_data", "build_general_model", "export_onnx", "finetune_fet", "fit_mlm_head",
        "plot_results", "pretrain_contrastive", "pretrain_ufet", "push_to_hub", "translate_mentions",
    ]  # fmt: skip
    undeclared = [str(option) for option in OPTIONS if option.range is None]
    assert not undeclared, f"numeric arguments without a declared Range: {undeclared}"
    # every numeric TrainingArguments field is in the table, through each training script
    numeric = {name for name, hint in typing.get_type_hints(TrainingArguments).items() if numeric_kind(hint)}
    for script in ("finetune_fet", "pretrain_contrastive", "pretrain_ufet"):
        assert numeric <= {option.name for option in RANGED if option.script == script}
    assert len(RANGED) > 60  # 10 scripts: a collapse of the discovery would show here


@pytest.mark.parametrize("script", [name for name in SCRIPT_NAMES if not hasattr(SCRIPTS[name], "build_parser")])
def test_the_argument_classes_found_are_all_the_script_parses(script, tmp_path):
    parsed = SCRIPTS[script].parse_args(base_argv(script, None, tmp_path))
    holders = parsed if isinstance(parsed, tuple) else (parsed,)
    assert {type(holder) for holder in holders} <= set(argument_classes(SCRIPTS[script]))


@pytest.mark.parametrize("option", RANGED, ids=option_id)
def test_out_of_range_values_are_refused_at_start(option, tmp_path, capsys):
    for text in outside(option):
        value = option.kind(text)
        if hasattr(SCRIPTS[option.script], "build_parser"):  # argparse: exits with the message on stderr
            with pytest.raises(SystemExit):
                parse(option, tmp_path, f"--{option.name}={text}")
            message = capsys.readouterr().err.strip().splitlines()[-1]
            assert message.endswith(f"argument --{option.name}: {option.range.requirement(value)}"), message
        else:
            with pytest.raises(ValueError) as raised:
                parse(option, tmp_path, f"--{option.name}={text}")  # `=`: argparse takes -inf for an option
            message = str(raised.value)
            assert message == f"--{option.name} {option.range.requirement(value, option.optional)}", message
        # the argument, the allowed range and the value, in so many words
        assert f"--{option.name}" in message and option.range.describe() in message and f"got {value!r}." in message
        assert not any(tmp_path.glob("out*")), "refused before any output is written"


@pytest.mark.parametrize("option", RANGED, ids=option_id)
def test_values_on_the_bounds_are_accepted(option, tmp_path):
    for text in inside(option):
        assert parsed_value(parse(option, tmp_path, f"--{option.name}={text}"), option.name) == option.kind(text)


@pytest.mark.parametrize("script", SCRIPT_NAMES)
def test_defaults_are_in_range(script, tmp_path):
    for command in {option.command for option in RANGED if option.script == script}:
        parsed = SCRIPTS[script].parse_args(base_argv(script, command, tmp_path))
        for option in (option for option in RANGED if option.script == script and option.command == command):
            value = parsed_value(parsed, option.name)
            values = value if isinstance(value, list) else [value]  # a list-valued option: each of its numbers
            assert all(item in option.range for item in values) or value is None, (str(option), value)


# ------------------------------------------------------------------------------------------ Range and the issue
def test_max_grad_norm_minus_one_no_longer_trains_backwards(tmp_path):
    """Issue #26: `--max_grad_norm -1` flipped the sign of every gradient; now the run does not start."""
    finetune_fet = SCRIPTS["finetune_fet"]
    with pytest.raises(ValueError, match=r"^--max_grad_norm must be positive \(unset: no clipping\), got -1.0.$"):
        finetune_fet.main(["--output_dir", str(tmp_path / "out"), "--max_steps", "6", "--max_grad_norm", "-1"])
    assert not (tmp_path / "out").exists()
    args, train_args = finetune_fet.parse_args(["--output_dir", str(tmp_path / "out"), "--max_grad_norm", "1"])
    assert train_args.max_grad_norm == 1.0


def test_range_words():
    assert Range(ge=1).describe() == "at least 1"
    assert Range(ge=0).describe() == ">= 0"
    assert Range(gt=0).describe() == "positive"
    assert Range(gt=0, lt=1).describe() == "in (0, 1)"
    assert Range(ge=0, le=1).describe() == "in [0, 1]"
    assert (
        Range(gt=2).describe() == "> 2" and Range(le=3).describe() == "at most 3" and Range(lt=3).describe() == "< 3"
    )
    assert Range().describe() == "a finite number"
    assert Range(gt=0).requirement(math.nan) == "must be finite and positive, got nan."
    assert Range(ge=0, note="0: off").requirement(-1) == "must be >= 0 (0: off), got -1."
    assert Range(ge=1).requirement(0, optional=True) == "must be at least 1 (or unset), got 0."
    assert True not in Range(ge=0) and "1" not in Range()  # a bool or a string is no number


def test_programmatic_arguments_are_checked_too():
    with pytest.raises(ValueError, match=r"--per_device_train_batch_size must be at least 1, got 0"):
        TrainingArguments(output_dir="unused", per_device_train_batch_size=0)
    with pytest.raises(ValueError, match=r"--learning_rate must be finite and positive, got inf"):
        TrainingArguments(output_dir="unused", learning_rate=math.inf)

    @dataclasses.dataclass
    class Arguments:
        size: typing.Annotated[int | None, Range(ge=1)] = None

        def __post_init__(self):
            check_ranges(self)

    assert Arguments().size is None and Arguments(3).size == 3
    with pytest.raises(ValueError, match=r"--size must be at least 1 \(or unset\), got 0"):
        Arguments(0)
    # `Annotated` is invisible to HfArgumentParser: the option keeps its type
    (parsed,) = HfArgumentParser(Arguments).parse_args_into_dataclasses(args=["--size", "4"])
    assert parsed.size == 4


def test_argparse_keeps_its_own_message_for_a_non_number(capsys):
    with pytest.raises(SystemExit):
        SCRIPTS["fit_mlm_head"].build_parser().parse_args(["--train_file", "x", "--output_dir", "y", "--epochs", "a"])
    assert "argument --epochs: invalid int value: 'a'" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ string choices
def literal_choices(hint) -> tuple | None:
    """The choices of a `Literal[...]` (or `Literal[...] | None`) type; None for any other type."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        hint = inner[0] if len(inner) == 1 else hint
    return typing.get_args(hint) if typing.get_origin(hint) is typing.Literal else None


CHOICES = [
    (script, name, choices)
    for script in SCRIPT_NAMES
    for cls in argument_classes(SCRIPTS[script])
    for name, hint in typing.get_type_hints(cls).items()
    if (choices := literal_choices(hint))
]


def test_the_string_choices_are_literal_fields():
    found = {(script, name) for script, name, _ in CHOICES}
    for script in ("finetune_fet", "pretrain_contrastive", "pretrain_ufet"):
        assert (script, "lr_scheduler_type") in found  # TrainingArguments
    assert {("finetune_fet", name) for name in ("data_format", "decision", "type_space", "start_recipe")} <= found
    assert {("pretrain_ufet", "data_format"), ("pretrain_ufet", "type_space")} <= found
    assert ("pretrain_contrastive", "denominator") in found
    assert {
        ("build_contrastive_data", "corpus_format"),
        ("export_onnx", "quantize"),
        ("translate_mentions", "format"),
    } <= found


@pytest.mark.parametrize("script, name, choices", CHOICES, ids=[f"{script}--{name}" for script, name, _ in CHOICES])
def test_a_string_choice_is_checked_by_the_parser(script, name, choices, tmp_path, capsys):
    argv = base_argv(script, None, tmp_path)
    for choice in choices:
        assert parsed_value(SCRIPTS[script].parse_args([*argv, f"--{name}", choice]), name) == choice
    with pytest.raises(SystemExit):
        SCRIPTS[script].parse_args([*argv, f"--{name}", "no-such-choice"])
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--{name}" in message and "invalid choice: 'no-such-choice'" in message
    assert f"(choose from {', '.join(map(repr, choices))})" in message
    assert not any(tmp_path.glob("out*")), "refused before any output is written"
