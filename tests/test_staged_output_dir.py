"""`output_paths.staged_output_dir`: a folder written beside its target and renamed into place, so a failure at any
point leaves the target as it was, and a refused target is refused before the caller writes anything."""

import os
import stat
from pathlib import Path

import pytest

from modeling_entity_typing.output_paths import staged_output_dir


def tree(root: Path) -> dict[str, str | None]:
    return {str(path.relative_to(root)): path.read_text() if path.is_file() else None for path in root.rglob("*")}


def test_the_folder_appears_complete_with_the_usual_permissions(tmp_path):
    with staged_output_dir(tmp_path / "out", overwrite=False) as staging:
        assert staging.parent == tmp_path and not (tmp_path / "out").exists()  # not there until the block ends
        (staging / "a.txt").write_text("a")
    assert tree(tmp_path) == {"out": None, "out/a.txt": "a"}
    (tmp_path / "plain").mkdir()  # what the umask gives any folder, not a private temporary folder's 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "out").st_mode) == stat.S_IMODE(os.stat(tmp_path / "plain").st_mode)


@pytest.mark.parametrize("before", [{}, {"out": None}, {"out": None, "out/old.txt": "old"}])
def test_a_failure_in_the_block_leaves_the_target_as_it_was(tmp_path, before):
    for name, text in before.items():
        if text is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(text)
    with pytest.raises(RuntimeError, match="midway"), staged_output_dir(tmp_path / "out", overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
        raise RuntimeError("midway")
    assert tree(tmp_path) == before


def test_a_refused_target_is_refused_before_the_block_runs(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="not empty; nothing was written.*--overwrite_output_dir"):
        with staged_output_dir(tmp_path / "out", overwrite=False):
            pytest.fail("the block ran")
    with pytest.raises(ValueError, match="is or holds"):
        with staged_output_dir(tmp_path, overwrite=True, keep=tmp_path / "out"):
            pytest.fail("the block ran")
    assert tree(tmp_path) == {"out": None, "out/old.txt": "old"}


def test_overwrite_replaces_the_whole_folder_and_leaves_nothing_beside_it(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    with staged_output_dir(tmp_path / "out", overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert tree(tmp_path) == {"out": None, "out/new.txt": "new"}
