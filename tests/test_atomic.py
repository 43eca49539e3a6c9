"""Atomic writes (maskscope.core.atomic): whole or nothing, no stray temporaries."""

import numpy as np
import pytest

from maskscope.core.atomic import atomic_path


def test_a_file_appears_whole_under_its_own_name_and_replaces_the_old_one(tmp_path):
    path = tmp_path / "maps" / "rise" / "cat.npy"  # the folders are made
    with atomic_path(path) as temporary:
        assert temporary.name == path.name and temporary.parent != path.parent
        np.save(temporary, np.arange(3))  # np.save adds no suffix: the name already ends in .npy
        assert not path.exists()
    assert np.load(path).tolist() == [0, 1, 2]
    with atomic_path(path) as temporary:
        np.save(temporary, np.arange(2))
    assert np.load(path).tolist() == [0, 1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["cat.npy"]


def test_a_failed_write_leaves_the_old_file_and_nothing_beside_it(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_folder_is_written_in_place_whole(tmp_path):
    path = tmp_path / "engines" / "key-int8"
    with atomic_path(path) as temporary:
        temporary.mkdir()
        (temporary / "model.xml").write_text("<net/>")
        (temporary / "model.bin").write_bytes(b"\0")
    assert sorted(p.name for p in path.iterdir()) == ["model.bin", "model.xml"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["key-int8"]


def test_a_killed_writers_leftovers_are_removed_and_others_kept(tmp_path):
    from maskscope.core.atomic import remove_leftovers

    (tmp_path / ".a.png.x1.tmp").mkdir()
    (tmp_path / ".a.png.x1.tmp" / "a.png").write_bytes(b"half")
    (tmp_path / ".a.png2.x2.tmp").mkdir()  # another file's
    remove_leftovers(tmp_path / "a.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".a.png2.x2.tmp"]
