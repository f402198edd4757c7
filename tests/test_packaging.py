"""Guards for the `package_dir` mapping of `configuration/` and `pipelines/` (top-level folders inside the package)."""

import ast
import configparser
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import modeling_entity_typing


ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"configuration": "modeling_entity_typing.configuration", "pipelines": "modeling_entity_typing.pipelines"}


def _setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return parser


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_no_top_level_configuration_or_pipelines_module_leaks():
    script = (
        "import sys, modeling_entity_typing, transformers\n"
        "leaked = [m for m in ('configuration', 'pipelines') if m in sys.modules]\n"
        "print(leaked)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/")
    assert result.stdout.strip() == "[]"


def test_mapped_packages_resolve_inside_the_namespace():
    for directory, package in MAPPED.items():
        module = importlib.import_module(package)
        assert Path(module.__file__).resolve().parent == ROOT / directory
    assert not (ROOT / "modeling_entity_typing" / "configuration").exists()
    assert not (ROOT / "modeling_entity_typing" / "pipelines").exists()


def test_every_package_directory_is_listed_and_mapped():
    options = _setup_cfg()["options"]
    packages = set(options["packages"].split())
    mapping = dict(line.split(" = ") for line in options["package_dir"].strip().splitlines())
    assert mapping == {package: directory for directory, package in MAPPED.items()}
    for init in ROOT.glob("*/**/__init__.py"):
        relative = init.parent.relative_to(ROOT)
        top = relative.parts[0]
        if top in ("modeling_entity_typing", *MAPPED):
            name = ".".join((MAPPED.get(top, top), *relative.parts[1:]))
            assert name in packages, f"{relative} is a package missing from setup.cfg `packages`"


def test_non_python_files_are_package_data():
    package_data = _setup_cfg()["options.package_data"]
    for top in ("modeling_entity_typing", *MAPPED):
        for path in (ROOT / top).rglob("*"):
            if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts:
                package = MAPPED.get(top, top)
                assert path.name in package_data.get(package, ""), f"{path} is not in package_data"


def test_no_source_imports_the_top_level_mapped_names():
    for path in [
        *ROOT.glob("modeling_entity_typing/*.py"),
        *ROOT.glob("configuration/*.py"),
        *ROOT.glob("pipelines/*.py"),
    ]:
        text = path.read_text()
        for name in MAPPED:
            assert f"from {name} import" not in text and f"import {name}\n" not in text, path


def test_tests_directory_has_no_init():
    assert not (ROOT / "tests" / "__init__.py").exists()


def test_version_is_exposed():
    assert modeling_entity_typing.__version__ == _setup_cfg()["metadata"]["version"]


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The package's wheel, built offline once for this module and installed into a fresh target folder."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", folder, ROOT],
        check=True,
        capture_output=True,
    )
    (wheel,) = folder.glob("modeling_entity_typing-*.whl")
    target = folder / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", target, wheel],
        check=True,
        capture_output=True,
    )
    return target


@pytest.mark.slow  # a fresh interpreter or a second process: seconds, run by CI's slow set
def test_non_editable_wheel_installs_and_maps_the_packages(installed_wheel, tmp_path):
    """`pip install .` path: build the wheel offline, install it to a fresh target, import from there."""
    target = installed_wheel
    script = (
        "import modeling_entity_typing.configuration as c, modeling_entity_typing.pipelines as p, sys\n"
        "print(c.__file__); print(p.__file__); print('configuration' in sys.modules)\n"
        # the metric script ships as package data
        "from modeling_entity_typing.evaluation.scoring import load_typing_metric\n"
        "print(load_typing_metric().compute(predictions=[['a']], references=[['a', 'b']])['macro_recall'])\n"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd="/", env=env
    )
    config_file, pipeline_file, leaked, metric_recall = result.stdout.split()
    assert metric_recall == "0.5"
    assert config_file.startswith(str(target)) and pipeline_file.startswith(str(target))
    assert leaked == "False"
    assert (target / "modeling_entity_typing" / "py.typed").exists()


CARD_SCRIPT = """
import json, sys
from modeling_entity_typing import FiveFineConfig, __file__ as package_file
from modeling_entity_typing.export import CARD_TEMPLATE, build_card_data, render_model_card

config = FiveFineConfig(id2label={0: "/person", 1: "/person/artist", 2: "/location"})
results = {"test_strict_accuracy": 0.5, "test_macro_f1": 0.625, "test_num_mentions": 4}
data = build_card_data(config, results, "org/x", base_model="bert-base-cased", dataset_name="D")
card = render_model_card(data, config, results, "org/x", dataset_name="D")
finders = [type(finder).__name__ for finder in sys.meta_path]
print(json.dumps({"package": package_file, "template": str(CARD_TEMPLATE), "finders": finders, "card": str(card)}))
"""


@pytest.mark.slow
def test_installed_wheel_renders_a_model_card_without_a_checkout(installed_wheel, tmp_path):
    """The card template is package data: a wheel installed away from the repository renders a card on its own."""
    import json
    import sysconfig

    from huggingface_hub import ModelCard

    target = installed_wheel
    # -S: no site-packages .pth files, so the venv's editable finder (which maps the package to this checkout) is
    # not installed; the dependencies come from site-packages on PYTHONPATH, after the wheel's target
    site_packages = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{target}:{site_packages}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(tmp_path / "hf_home"))
    result = subprocess.run(
        [sys.executable, "-S", "-c", CARD_SCRIPT], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rendered = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(rendered["package"]).is_relative_to(target), rendered["package"]
    assert Path(rendered["template"]) == target / "modeling_entity_typing/export/templates/model_card_template.md"
    assert not any("Editable" in finder for finder in rendered["finders"]), rendered["finders"]
    card = ModelCard(rendered["card"])
    assert card.text.startswith("\n# org/x\n") and "A **FiveFine** entity typing model" in card.text
    assert "Exported with the `modeling-entity-typing` package (0.1.0.dev0)." in card.text
    assert "| test | 4 | 50.00 | 62.50 |" in card.text and "Dai, Hongliang" in card.text
    scores = {(entry.metric_name, entry.dataset_split): entry.metric_value for entry in card.data.eval_results}
    assert scores == {("Strict accuracy", "test"): 0.5, ("Macro F1 (loose)", "test"): 0.625}
    assert card.data.library_name == "modeling_entity_typing" and card.data.base_model == "bert-base-cased"


def _imports_pipelines(path: Path, package: str) -> list[int]:
    """Lines of `path` (module `package`.name) that import the `pipelines` package, absolutely or relatively."""
    target = "modeling_entity_typing.pipelines"
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else (node.module or "")
            )
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(name == target or name.startswith(target + ".") or name.partition(".")[0] == "pipelines"
               for name in names):  # fmt: skip
            lines.append(node.lineno)
    return lines


def test_no_core_module_imports_the_pipelines():
    """Pipelines sit above the models: only the package `__init__` (which registers the task) may import them."""
    offenders = []
    for top, package in (
        ("modeling_entity_typing", "modeling_entity_typing"),
        ("configuration", MAPPED["configuration"]),
    ):
        for path in sorted((ROOT / top).rglob("*.py")):
            if path == ROOT / "modeling_entity_typing" / "__init__.py":
                continue
            relative = path.relative_to(ROOT / top)
            module_package = ".".join((package, *relative.parent.parts))
            offenders += [f"{path.relative_to(ROOT)}:{line}" for line in _imports_pipelines(path, module_package)]
    assert not offenders, f"core modules import `pipelines` (a pipeline must sit above the models): {offenders}"
