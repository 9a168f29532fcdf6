"""Readers: image + mask folders, class folders, COVID-QU-Ex, CSV indexes, CXR-Net H5 files (read and write)."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from PIL import Image

from cxrzoo.data import (
    cxrnet_h5_dataset,
    read_class_folders,
    read_covid_qu_ex,
    read_csv,
    read_cxrnet_h5,
    read_image_folder,
    write_cxrnet_h5,
)

QU = ("data", "covid_qu_ex_sample")
H5 = ("fixtures", "cxrnet", "sample", "002130-004-1.h5")


def _png(path, value=0, shape=(8, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(shape, value, np.uint8)).save(path)


def test_image_folder_with_mask_folders(shared):
    samples = read_image_folder(shared("data", "v7_covid_lungs", "train"), masks=("lungs",))
    assert len(samples) == 300 and samples.mask_names == ["lungs"]
    assert all(os.path.basename(i) == os.path.basename(m[0]) for i, m in zip(samples.images, samples.masks))
    infection = read_image_folder(
        shared("data", "covid_infection", "train"), masks=("lung_left", "lung_right", "infection")
    )
    assert len(infection) == 70 and len(infection.masks[0]) == 3


def test_image_folder_reports_missing_masks(tmp_path):
    _png(tmp_path / "images" / "a.png")
    _png(tmp_path / "images" / "b.png")
    _png(tmp_path / "lungs" / "a.png")
    _png(tmp_path / "other" / "a.jpg")  # same stem, other extension: accepted
    with pytest.raises(FileNotFoundError, match="b.png"):
        read_image_folder(tmp_path, masks=("lungs",))
    assert read_image_folder(tmp_path, masks=()).masks is None
    with pytest.raises(FileNotFoundError, match="no such folder"):
        read_image_folder(tmp_path, images="nope")


def test_class_folders(tmp_path):
    for cls, n in [("normal", 2), ("covid", 3)]:
        for i in range(n):
            _png(tmp_path / cls / f"{i}.png")
    samples = read_class_folders(tmp_path)
    assert samples.class_names == ["covid", "normal"] and samples.labels.tolist() == [0, 0, 0, 1, 1]
    assert read_class_folders(tmp_path, classes=["normal", "covid"]).labels.tolist() == [0, 0, 1, 1, 1]


def test_covid_qu_ex_layout(shared):
    root = shared(*QU)
    samples = read_covid_qu_ex(root)
    assert len(samples) == 12 and samples.class_names == ["COVID-19", "Non-COVID", "Normal"]
    assert np.bincount(samples.labels).tolist() == [4, 4, 4]
    assert set(samples.extra["split"]) == {"Test"}
    lung, infection = samples.masks[0]
    assert "lung masks" in lung and "infection masks" in infection
    # the same reader accepts the "Infection Segmentation Data" folder itself
    inner = read_covid_qu_ex(root / "Infection Segmentation Data", masks=("infection",))
    assert inner.images == samples.images and inner.mask_names == ["infection"]
    x, (m, y) = next(iter(samples.dataset(recipe="tahir_segmentation", batch_size=12, shuffle=False)))
    assert x.shape == (12, 256, 256, 3) and m.shape == (12, 256, 256, 2)
    infected = m.numpy()[..., 1].reshape(12, -1).max(axis=1)
    assert infected[y.numpy() != 0].max() == 0  # non-COVID and normal images have empty infection masks
    assert infected[y.numpy() == 0].min() == 1
    with pytest.raises(FileNotFoundError, match="Train"):
        read_covid_qu_ex(root, splits=("Train",))
    with pytest.raises(ValueError, match="mask kinds"):
        read_covid_qu_ex(root, masks=("lungs",))


def test_csv_index(tmp_path):
    for name in ("a", "b", "c"):
        _png(tmp_path / "img" / f"{name}.png")
        _png(tmp_path / "msk" / f"{name}.png")
    (tmp_path / "index.csv").write_text(
        "path,finding,patient,mask\n"
        "img/a.png,COVID-19,p1,msk/a.png\n"
        "img/b.png,normal,p1,msk/b.png\n"
        "img/c.png,COVID-19,p2,msk/c.png\n"
    )
    samples = read_csv(tmp_path / "index.csv", label="finding", group="patient", masks=("mask",))
    assert samples.class_names == ["COVID-19", "normal"] and samples.labels.tolist() == [0, 1, 0]
    assert samples.groups.tolist() == ["p1", "p1", "p2"]
    assert samples.images[0] == str(tmp_path / "img" / "a.png") and samples.masks[2] == [str(tmp_path / "msk/c.png")]
    ordered = read_csv(tmp_path / "index.csv", label="finding", group=None, class_names=["normal", "COVID-19"])
    assert ordered.labels.tolist() == [1, 0, 1] and ordered.groups is None
    with pytest.raises(ValueError, match="missing column"):
        read_csv(tmp_path / "index.csv")
    with pytest.raises(ValueError, match="not in class_names"):
        read_csv(tmp_path / "index.csv", label="finding", group=None, class_names=["normal"])


def test_real_index_csv(shared):
    samples = read_csv(shared("data", "v7_covid_lungs", "val", "index.csv"), image="id", label="finding", group=None)
    assert len(samples) == 60 and samples.names[0] == "v7_val_0000"
    assert "COVID-19" in samples.class_names and samples.labels.max() == len(samples.class_names) - 1


def test_cxrnet_h5_reads_the_authors_file(shared):
    example = read_cxrnet_h5(shared(*H5))
    assert example["X"].shape == example["M"].shape == (300, 340, 1) and example["X"].dtype == np.float64
    assert example["y"].tolist() == [1, 0] and example["y"].dtype == np.int64
    assert example["w"] == 0.6252761820592134
    assert round(float(example["M"].mean()), 7) == 0.2337825 and int((example["M"] > 0.3).sum()) == 24792
    assert round(float(example["X"].min()), 6) == -1.633061 and round(float(example["X"].max()), 6) == 1.723313


def test_cxrnet_h5_write_reproduces_the_authors_layout(shared, tmp_path):
    example = read_cxrnet_h5(shared(*H5))
    out = tmp_path / "copy.h5"
    write_cxrnet_h5(out, **example)
    again = read_cxrnet_h5(out)
    for key in ("X", "M", "y"):
        np.testing.assert_array_equal(again[key], example[key])
    assert again["w"] == example["w"]
    with h5py.File(shared(*H5)) as theirs, h5py.File(out) as ours:
        assert sorted(ours.keys()) == sorted(theirs.keys()) == ["M", "X", "w", "y"]
        assert dict(ours.attrs) == dict(theirs.attrs) == {}
        for key in ("X", "M", "y", "w"):
            assert ours[key].dtype == theirs[key].dtype and ours[key].shape == theirs[key].shape
            assert ours[key].chunks == theirs[key].chunks and ours[key].compression == theirs[key].compression
            assert ours[key].compression_opts == theirs[key].compression_opts


def test_cxrnet_h5_write_validates_and_leaves_no_partial_file(tmp_path, monkeypatch):
    x = np.zeros((30, 34, 1))
    with pytest.raises(ValueError, match="M must lie in"):
        write_cxrnet_h5(tmp_path / "bad.h5", x, x + 2, [1, 0], 1.0)
    with pytest.raises(ValueError, match="one-hot"):
        write_cxrnet_h5(tmp_path / "bad.h5", x, x, [1, 0, 0], 1.0)

    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", explode)
    with pytest.raises(OSError, match="disk full"):
        write_cxrnet_h5(tmp_path / "bad.h5", x, x, [1, 0], 1.0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    (tmp_path / "notes.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="notes.h5"):
        read_cxrnet_h5(tmp_path / "notes.h5")


def test_cxrnet_h5_dataset(shared, tmp_path):
    example = read_cxrnet_h5(shared(*H5))
    paths = [shared(*H5)]
    flipped = dict(example, X=example["X"][:, ::-1], y=np.array([0, 1]), w=1.5)
    write_cxrnet_h5(tmp_path / "neg.h5", **flipped)
    paths.append(tmp_path / "neg.h5")
    (x, m), y, w = next(iter(cxrnet_h5_dataset(paths, batch_size=2, shuffle=False)))
    np.testing.assert_array_equal(x.numpy()[0], example["X"].astype(np.float32))
    np.testing.assert_array_equal(m.numpy()[1], example["M"].astype(np.float32))
    np.testing.assert_array_equal(y.numpy(), [[1, 0], [0, 1]])
    np.testing.assert_allclose(w.numpy(), [0.6252762, 1.5])
    (xa, ma), _, _ = next(iter(cxrnet_h5_dataset(paths, batch_size=2, augment="cxrnet_module2", seed=0)))
    assert xa.shape == (2, 300, 340, 1) and ma.numpy().min() >= 0 and ma.numpy().max() <= 1
