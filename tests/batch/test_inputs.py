"""collect_inputs: order, recursion, globs, manifests, and keys that never collide (no TensorFlow needed)."""

from __future__ import annotations

import os

import pytest

from cxrzoo.batch.inputs import MAX_COMPONENT_BYTES, InputError, collect_inputs


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_gives_its_images_recursively_sorted_by_relative_path(tmp_path):
    for rel in ("b.png", "a/z.jpg", "a/b.dcm", "A.TIF", ".hidden.png", ".cache/c.png", "notes.txt", "c.jpeg"):
        _touch(tmp_path / "in" / rel)
    items = collect_inputs([tmp_path / "in"])
    assert [i.key for i in items] == ["A.TIF", "a/b.dcm", "a/z.jpg", "b.png", "c.jpeg"]
    assert items[1].path == os.path.join(str(tmp_path / "in"), "a/b.dcm") == items[1].source


def test_the_order_given_is_kept_and_a_duplicate_path_gets_its_own_key(tmp_path):
    one, two = _touch(tmp_path / "one.png"), _touch(tmp_path / "two.png")
    items = collect_inputs([two, one, two])
    assert [i.path for i in items] == [str(two), str(one), str(two)]
    assert [i.key for i in items] == ["two.png", "one.png", "two.png~2"]


def test_names_that_differ_only_in_extension_suffix_folder_or_case_stay_distinct(tmp_path):
    for rel in ("d1/x.png", "d1/x.jpg", "d1/x-2.png", "d2/x.png", "d3/X.PNG"):
        _touch(tmp_path / rel)
    items = collect_inputs([tmp_path / "d1", tmp_path / "d2", tmp_path / "d3"])
    assert [i.key for i in items] == ["x-2.png", "x.jpg", "x.png", "x.png~2", "X.PNG~3"]
    assert len({i.key.casefold() for i in items}) == len(items)


def test_a_long_file_name_gets_a_shortened_hashed_key(tmp_path):
    name = "n" * 235 + ".png"  # 239 characters
    _touch(tmp_path / name)
    other = "n" * 235 + ".jpg"
    _touch(tmp_path / other)
    items = collect_inputs([tmp_path])
    keys = [i.key for i in items]
    assert len(set(keys)) == 2
    for key in keys:
        assert len(key.encode()) <= MAX_COMPONENT_BYTES
        assert len(f"{key}.heatmaps.npz".encode()) < 255


def test_globs_are_relative_to_their_fixed_part(tmp_path):
    for rel in ("s/a/1.png", "s/b/2.png", "s/b/3.jpg"):
        _touch(tmp_path / rel)
    items = collect_inputs([str(tmp_path / "s" / "**" / "*.png")])
    assert [i.key for i in items] == ["a/1.png", "b/2.png"]
    with pytest.raises(InputError, match="no file matches"):
        collect_inputs([str(tmp_path / "s" / "*.bmp")])


def test_a_manifest_is_read_relative_to_its_folder(tmp_path):
    _touch(tmp_path / "m" / "img" / "a.png")
    absolute = _touch(tmp_path / "elsewhere" / "b.png")
    manifest = tmp_path / "m" / "list.csv"
    manifest.write_text(f"id,file\n1,img/a.png\n2,{absolute}\n3,\n")
    items = collect_inputs(manifest=manifest, path_column="file")
    assert [(i.path, i.key) for i in items] == [("img/a.png", "img/a.png"), (str(absolute), "b.png")]
    assert items[0].source == str(tmp_path / "m" / "img" / "a.png")
    with pytest.raises(InputError, match=r"no column 'path' \(its columns: id, file\).*--path-column"):
        collect_inputs(manifest=manifest)


def test_command_line_mistakes_are_reported_before_anything_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no image file"):
        collect_inputs([tmp_path / "empty"])
    with pytest.raises(InputError, match="no inputs"):
        collect_inputs([])
    # a missing file is an input like any other: the run reports it as that file's error
    assert collect_inputs([tmp_path / "missing.png"])[0].key == "missing.png"


def test_the_output_folder_inside_an_input_folder_is_not_read(tmp_path):
    _touch(tmp_path / "data" / "a.png")
    _touch(tmp_path / "data" / "out" / "artifacts" / "a.png.mask.png")
    items = collect_inputs([tmp_path / "data"], exclude=[tmp_path / "data" / "out"])
    assert [i.key for i in items] == ["a.png"]
