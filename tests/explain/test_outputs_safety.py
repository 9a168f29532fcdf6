"""Figures and data files cxrzoo writes: umask-respecting modes and no glyph warnings on stderr (issue 14)."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from cxrzoo.explain.overlay import save_overlay


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_overlay_figures_follow_the_umask(tmp_path, umask_022):
    path = save_overlay(tmp_path / "cam.png", np.zeros((32, 32), np.uint8), np.ones((32, 32), np.float32) * 0.5)
    assert path.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    path = save_overlay(tmp_path / "private.png", np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.float32))
    assert path.stat().st_mode & 0o777 == 0o600


def test_cxrnet_h5_examples_follow_the_umask(tmp_path, umask_022):
    from cxrzoo.data.readers import read_cxrnet_h5, write_cxrnet_h5

    path = tmp_path / "example.h5"
    write_cxrnet_h5(path, np.zeros((30, 34)), np.ones((30, 34)), [1, 0], 0.5)
    assert path.stat().st_mode & 0o777 == 0o644
    assert read_cxrnet_h5(path)["w"] == 0.5


def test_titles_in_missing_glyphs_do_not_warn(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_overlay(
            tmp_path / "x.png", np.zeros((16, 16), np.uint8), {"肺 Grad-CAM": np.zeros((16, 16))}, title="患者 ☤ 𝔛"
        )
    assert not [w for w in caught if "Glyph" in str(w.message)]
