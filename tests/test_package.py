"""The package itself: a side-effect-free import, a clear refusal of Keras 2 stacks, the public API."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import cxrzoo


def _run(code: str, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "KERAS_BACKEND")}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


def test_import_has_no_side_effects():
    result = _run("""
        import socket, sys
        def refuse(*a, **k):
            raise RuntimeError("network used at import")
        socket.socket.connect = refuse
        socket.getaddrinfo = refuse
        import cxrzoo
        heavy = [m for m in ("tensorflow", "keras", "kymatio", "h5py", "cv2") if m in sys.modules]
        assert not heavy, heavy
        assert cxrzoo.__version__
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_keras2_stack_fails_with_one_clear_error(tmp_path):
    # A fake Keras 2 distribution shadowing the real one.
    dist = tmp_path / "keras-2.15.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: keras\nVersion: 2.15.0\n")
    (tmp_path / "keras").mkdir()
    (tmp_path / "keras" / "__init__.py").write_text("__version__ = '2.15.0'\n")
    result = _run("import cxrzoo", PYTHONPATH=str(tmp_path))
    assert result.returncode != 0
    assert "UnsupportedStackError" in result.stderr
    assert "keras 2.15.0" in result.stderr and "Keras 2 stack" in result.stderr


def test_tf_keras_switch_is_refused():
    result = _run("import cxrzoo", TF_USE_LEGACY_KERAS="1")
    assert result.returncode != 0 and "tf_keras" in result.stderr


def test_other_backends_are_refused():
    result = _run("import cxrzoo", KERAS_BACKEND="jax")
    assert result.returncode != 0 and "TensorFlow backend" in result.stderr


@pytest.mark.parametrize("name", sorted(cxrzoo._EXPORTS))
def test_public_names_resolve(name):
    value = getattr(cxrzoo, name)
    assert callable(value)
    assert value.__doc__, f"{name} has no docstring"


def test_dir_lists_the_public_api():
    listing = dir(cxrzoo)
    for name in ("build_res_cr_net", "list_models", "weights", "preprocessing"):
        assert name in listing


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = cxrzoo.nope


def test_a_warning_from_cxrzoo_code_fails_the_test_run():
    """setup.cfg's filterwarnings turns a warning issued from a cxrzoo module into an error (0 warnings from
    cxrzoo's own code in the default run), while third-party warnings stay filtered by name and a warning cxrzoo
    raises for its caller is still caught by pytest.warns."""
    import warnings

    with pytest.raises(UserWarning, match="from cxrzoo"):
        warnings.warn_explicit("from cxrzoo", UserWarning, "cxrzoo/explain/cam.py", 1, module="cxrzoo.explain.cam")
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old name", DeprecationWarning, "cxrzoo/metrics.py", 1, module="cxrzoo.metrics")
    warnings.warn_explicit("third party", DeprecationWarning, "kymatio/x.py", 1, module="kymatio.frontend")
    with pytest.warns(UserWarning, match="expected"):
        warnings.warn_explicit("expected", UserWarning, "cxrzoo/explain/cam.py", 1, module="cxrzoo.explain.cam")


def test_moved_names_warn_at_the_caller_so_the_error_filter_does_not_fire(monkeypatch):
    """The DeprecationWarning of a moved name points at the importing code (stacklevel), not at cxrzoo: under
    setup.cfg's ``error::Warning:cxrzoo.*`` a user's (or a test's) use of an old name warns and does not fail."""
    import cxrzoo.explain
    import cxrzoo.preprocessing

    # the first look-up caches the name in the module (it warns once); forget it for this test
    monkeypatch.delitem(vars(cxrzoo.explain), "cxrnet_heatmaps", raising=False)
    monkeypatch.delitem(vars(cxrzoo.preprocessing), "prepare_cxrnet_input", raising=False)
    with pytest.warns(DeprecationWarning, match="moved to") as record:
        assert callable(cxrzoo.explain.cxrnet_heatmaps)
    assert record[0].filename == __file__
    with pytest.warns(DeprecationWarning, match="moved to") as record:
        assert callable(cxrzoo.preprocessing.prepare_cxrnet_input)
    assert record[0].filename == __file__
