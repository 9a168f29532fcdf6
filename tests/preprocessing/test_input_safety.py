"""Hostile inputs to read_image (issue 14): decompression bombs under an address-space limit, files that are not
regular files, the size cap, memory exhaustion, degenerate shapes and broken DICOM transforms."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from cxrzoo.preprocessing import io as image_io
from cxrzoo.preprocessing.io import (
    MAX_ASPECT,
    MIN_SIDE,
    ImageReadError,
    ImageShapeError,
    ImageTooLargeError,
    read_image,
)

sys.path.insert(0, str(Path(__file__).parent))
import _hostile

pytestmark = pytest.mark.timeout(300)

ADDRESS_SPACE_LIMIT = 1536 * 2**20
RSS_LIMIT_MB = 600

# Run in a fresh interpreter under RLIMIT_AS: only cxrzoo.preprocessing.io is imported (no TensorFlow, whose import
# alone reserves more address space than the limit), and the peak RSS of the whole process is reported.
_PROBE = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
    import cxrzoo.preprocessing.io as image_io
    outcome = {{"tensorflow_imported": "tensorflow" in sys.modules}}
    try:
        image = image_io.read_image(sys.argv[1])
        outcome["result"] = "read " + str(image.shape)
    except image_io.ImageTooLargeError as err:
        outcome["result"] = "ImageTooLargeError"
        outcome["message"] = str(err)
    except BaseException as err:
        outcome["result"] = type(err).__name__ + ": " + str(err)
    outcome["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # ru_maxrss may keep the parent's high-water mark across fork and exec; VmHWM is this program's own
    hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")]
    outcome["vm_hwm_mb"] = int(hwm[0]) / 1024 if hwm else None
    print(json.dumps(outcome))
""")

CRAFTED = {
    "dicom_deflated_16bit_4frames": lambda: _hostile.deflated_dicom_bomb(8000, 8000, frames=4, bits=16),
    "dicom_deflated_32bit_2frames": lambda: _hostile.deflated_dicom_bomb(8000, 8000, frames=2, bits=32),
    "dicom_deflated_32bit_1frame": lambda: _hostile.deflated_dicom_bomb(8000, 8000, frames=1, bits=32),
    "dicom_native_16bit_50frames_claimed": lambda: _hostile.native_dicom(8000, 8000, bytes(4096), frames=50),
    "dicom_native_rgb_claimed": lambda: _hostile.native_dicom(
        8000, 8000, bytes(4096), bits=16, samples=3, photometric="RGB"
    ),
    "png_60000x60000": lambda: _hostile.png_header_only(60000, 60000),
    "png16_60000x60000": lambda: _hostile.png_header_only(60000, 60000, bit_depth=16),
    "jpeg_60000x60000": lambda: _hostile.jpeg_header_only(60000, 60000),
}


@pytest.fixture(scope="module")
def crafted_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("crafted")
    paths = {}
    for name, make in CRAFTED.items():
        suffix = ".dcm" if name.startswith("dicom") else ".png" if name.startswith("png") else ".jpg"
        paths[name] = folder / f"{name}{suffix}"
        paths[name].write_bytes(make())
    return paths


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and ru_maxrss in KiB are Linux's")
@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_files_are_refused_in_bounded_memory(crafted_files, name):
    path = crafted_files[name]
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(limit=ADDRESS_SPACE_LIMIT), str(path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    print(
        f"{name}: {path.stat().st_size:,} bytes on disk, peak RSS {outcome['peak_rss_mb']:.0f} MB (ru_maxrss), "
        f"{outcome['vm_hwm_mb']:.0f} MB (VmHWM), {outcome['result']}"
    )
    assert not outcome["tensorflow_imported"]
    assert outcome["result"] == "ImageTooLargeError", outcome
    assert str(path) in outcome["message"]
    # ru_maxrss is inherited across fork and exec on Linux (it reports the pytest process's peak when that is
    # higher), so the probe's own high-water mark decides; ru_maxrss is the fallback where /proc is absent
    own_peak = outcome["vm_hwm_mb"] if outcome["vm_hwm_mb"] is not None else outcome["peak_rss_mb"]
    assert own_peak < RSS_LIMIT_MB


def test_a_deflated_data_set_is_inflated_under_the_cap():
    # a 4 x 4 image whose pixel element claims 64 MB: the header passes, the inflation cap stops it
    header = _hostile.dicom_header_dataset(4, 4)
    assert header.Rows == 4
    bomb = _hostile.native_dicom(4, 4, bytes(64 * 2**20), transfer_syntax=_hostile.DEFLATED)
    assert len(bomb) < 2**20
    with pytest.raises(ImageTooLargeError, match="inflates to more than 4,194,304 bytes"):
        read_image(bomb, max_bytes=4 * 2**20)


def test_a_small_deflated_dicom_still_reads():
    pixels = np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 100
    data = _hostile.native_dicom(12, 10, pixels.astype("<u2").tobytes(), transfer_syntax=_hostile.DEFLATED)
    out = read_image(data, native_depth=True)
    np.testing.assert_array_equal(out, pixels.astype(np.float32))


def test_only_the_first_frame_is_decoded(monkeypatch):
    frames = np.stack([np.full((6, 5), 10 * (i + 1), np.uint16) for i in range(3)])
    data = _hostile.native_dicom(6, 5, frames.astype("<u2").tobytes(), frames=3)
    from pydicom import pixels as pydicom_pixels

    calls = []
    real = pydicom_pixels.pixel_array
    monkeypatch.setattr(pydicom_pixels, "pixel_array", lambda *a, **k: calls.append(k) or real(*a, **k))
    out = read_image(data, native_depth=True)
    np.testing.assert_array_equal(out, frames[0].astype(np.float32))
    assert calls and all(k.get("index") == 0 for k in calls)


@pytest.mark.timeout(20)
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "scan.png"
    os.mkfifo(fifo)
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_error_of(read_image, fifo)), daemon=True)
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "read_image blocked on a FIFO"
    assert isinstance(outcome[0], ImageReadError) and "FIFO" in str(outcome[0]) and str(fifo) in str(outcome[0])


def _error_of(function, *args, **kwargs):
    try:
        function(*args, **kwargs)
    except Exception as err:
        return err
    return None


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused_before_reading(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} does not exist here")
    with pytest.raises(ImageReadError, match="character device"):
        read_image(device)


def test_directories_are_refused(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a directory"):
        read_image(tmp_path)


def test_the_size_cap_applies_before_reading(tmp_path, encode, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(encode.png(np.zeros((300, 300), np.uint8)) + bytes(4096))
    with pytest.raises(ImageTooLargeError, match="over the limit of 1,000"):
        read_image(path, max_bytes=1000)
    monkeypatch.setenv("CXRZOO_MAX_FILE_BYTES", "2000")
    with pytest.raises(ImageTooLargeError, match="over the limit of 2,000"):
        read_image(path)
    with pytest.raises(ImageTooLargeError, match="<bytes>"):
        read_image(path.read_bytes())
    monkeypatch.setenv("CXRZOO_MAX_FILE_BYTES", "lots")
    with pytest.raises(ValueError, match="CXRZOO_MAX_FILE_BYTES"):
        read_image(path)
    monkeypatch.delenv("CXRZOO_MAX_FILE_BYTES")
    assert read_image(path).shape == (300, 300)


def test_memory_exhaustion_is_reported_per_file(tmp_path, encode, monkeypatch):
    path = tmp_path / "photo.png"
    path.write_bytes(encode.png(np.zeros((4, 4, 3), np.uint8)))

    def exhausted(img):
        raise MemoryError

    monkeypatch.setattr(image_io, "_pil_to_gray", exhausted)
    with pytest.raises(ImageTooLargeError, match="photo.png: not enough memory"):
        read_image(path)


def test_pixel_budget_counts_bits_and_samples(encode):
    rgba = encode.png(np.zeros((40, 40, 4), np.uint8))  # Pillow holds it at 4 bytes per pixel: 6,400 bytes
    assert read_image(rgba, max_pixel_bytes=6400).shape == (40, 40)
    with pytest.raises(ImageTooLargeError, match="6,400 bytes of pixel data"):
        read_image(rgba, max_pixel_bytes=6399)
    dicom = _hostile.native_dicom(40, 40, bytes(40 * 40 * 2 * 3), frames=3)
    with pytest.raises(ImageTooLargeError, match=r"9,600 bytes of pixel data \(40 x 40 x 3 frames\)"):
        read_image(dicom, max_pixel_bytes=9599)


def test_degenerate_images_fail_the_radiograph_check(encode):
    column = encode.png(np.random.default_rng(0).integers(0, 256, (5000, 1), dtype=np.uint8))
    assert read_image(column).shape == (5000, 1)  # the check is the caller's choice
    with pytest.raises(ImageShapeError, match="too small for a chest radiograph"):
        read_image(column, min_side=MIN_SIDE, max_aspect=MAX_ASPECT)
    strip = encode.jpeg(np.zeros((200, 900), np.uint8))
    with pytest.raises(ImageShapeError, match=r"aspect ratio 4.5\) is not shaped like a chest radiograph"):
        read_image(strip, min_side=MIN_SIDE, max_aspect=MAX_ASPECT)
    dicom = _hostile.native_dicom(20, 400, bytes(20 * 400 * 2))
    with pytest.raises(ImageShapeError):
        read_image(dicom, min_side=MIN_SIDE, max_aspect=MAX_ASPECT)
    assert read_image(encode.png(np.zeros((256, 300), np.uint8)), min_side=MIN_SIDE, max_aspect=MAX_ASPECT).shape == (
        256,
        300,
    )


def test_a_zero_rescale_slope_is_a_clear_error(encode):
    data = encode.dicom(np.arange(64, dtype=np.uint16).reshape(8, 8), slope=0, intercept=-1024)
    with pytest.raises(ImageReadError, match="rescale slope is 0"):
        read_image(data)


def test_in_memory_errors_name_the_input_not_a_stream():
    err = _error_of(read_image, b"certainly not an image")
    assert isinstance(err, ImageReadError)
    assert "BytesIO" not in str(err) and "<bytes>" in str(err)
    err = _error_of(read_image, io.BytesIO(b"junk").getvalue())
    assert "0x" not in str(err)
