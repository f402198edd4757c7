"""The mention-geometry measures on vectors whose answers are known by construction."""

import sys
from pathlib import Path

import pytest
import torch


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import mention_geometry  # noqa: E402


def unit(*rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float), dim=-1)


def test_two_type_clusters_and_exact_translations():
    # two persons along x, two locations along y, one untyped mention between them
    english = unit([1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [0.1, 1.0, 0.0], [-0.1, 1.0, 0.0], [1.0, 1.0, 1.0])
    general = [{"person"}, {"person"}, {"location"}, {"location"}, set()]
    result = mention_geometry.geometry(english, english.clone(), general)
    assert result["mentions"] == 5 and result["mentions_with_a_general_type"] == 4
    assert result["neighbor_shares_general_type"] == 1.0  # each typed mention's nearest typed one is its twin
    assert result["random_pair_shares_general_type"] == pytest.approx(1 / 3, abs=1e-4)  # 4 of 12 ordered pairs
    assert result["type_separation"] > 0.9
    assert result["translation_cosine"] == pytest.approx(1.0, abs=1e-4)
    assert result["translation_precision_at_1"] == 1.0


def test_translations_that_land_on_another_mention_are_not_retrieved():
    english = unit([1.0, 0.0], [0.0, 1.0], [-1.0, 0.0])
    portuguese = english[[1, 0, 2]]  # the first two translations swapped
    result = mention_geometry.geometry(english, portuguese, [{"person"}, {"location"}, {"person"}])
    assert result["translation_precision_at_1"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["mean_pairwise_cosine"] == pytest.approx(-1 / 3, abs=1e-4)  # (0 + 0 - 1) / 3 pairs
    # the two persons point apart: each typed mention's nearest is the location (cosine 0 beats -1)
    assert result["neighbor_shares_general_type"] == 0.0


def test_a_model_argument_must_name_a_model_folder(tmp_path):
    with pytest.raises(Exception, match="NAME=PATH"):
        mention_geometry.parse_model(str(tmp_path))
    with pytest.raises(Exception, match="not a model folder"):
        mention_geometry.parse_model(f"x={tmp_path}")
