"""read_image: every supported format, the documented conversions, and clear errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cxrzoo.preprocessing import MAX_PIXELS, ImageReadError, read_image

RNG = np.random.default_rng(7)


def test_8bit_png_round_trips_exactly(tmp_path, encode):
    img = RNG.integers(0, 256, (37, 53), dtype=np.uint8)
    path = tmp_path / "a.png"
    path.write_bytes(encode.png(img))
    for source in (path, str(path), path.read_bytes()):
        out = read_image(source)
        assert out.dtype == np.uint8 and out.flags.c_contiguous
        np.testing.assert_array_equal(out, img)


def test_gray_png_with_a_colour_profile_is_decoded_by_opencv_silently(tmp_path, capfd, monkeypatch):
    # 9% of the V7 images embed an RGB ICC profile, which libpng warns about on stderr for a gray image; the reader
    # cuts the profile out of the stream it gives OpenCV (the profile is never applied either way).
    from PIL import ImageCms

    import cxrzoo.preprocessing.io as io_module

    img = RNG.integers(0, 256, (41, 29), dtype=np.uint8)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "profiled.png"
    Image.fromarray(img).save(path, icc_profile=profile)
    assert b"iCCP" in path.read_bytes()

    def no_pillow(*args):
        raise AssertionError("went through Pillow")

    monkeypatch.setattr(io_module, "_decode_pil", no_pillow)
    monkeypatch.setenv("CXRZOO_PNG_DECODER", "opencv")  # the path under test (Wuffs never warns)
    np.testing.assert_array_equal(read_image(path), img)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("shape", [(1, 1), (1, 300), (257, 1), (37, 53), (128, 127)])
def test_wuffs_decodes_8bit_gray_pngs_like_opencv(tmp_path, monkeypatch, shape):
    # The optional fast-png extra must never change a pixel: every PNG filter type (smooth ramps, noise and flat
    # areas make the encoders pick different ones), odd sizes, and the 16-bit files it must leave to OpenCV.
    pytest.importorskip("pywuffs", exc_type=ImportError)  # not installed, or installed but not loadable
    import cv2

    from cxrzoo.preprocessing import png_decoder

    monkeypatch.delenv("CXRZOO_PNG_DECODER", raising=False)
    assert png_decoder() == "wuffs"
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = ((yy * 3 + xx * 5) % 256).astype(np.uint8)
    img[: shape[0] // 2] = RNG.integers(0, 256, img[: shape[0] // 2].shape, dtype=np.uint8)
    deep = img.astype(np.uint16) * 257 + 3
    sources = [cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])[1].tobytes() for level in (0, 1, 9)]
    for optimize in (False, True):
        path = tmp_path / f"pil{optimize}.png"
        Image.fromarray(img).save(path, optimize=optimize)
        sources.append(path.read_bytes())
    for data in sources:
        fast = read_image(data)
        monkeypatch.setenv("CXRZOO_PNG_DECODER", "opencv")
        assert png_decoder() == "opencv"
        np.testing.assert_array_equal(fast, read_image(data))
        np.testing.assert_array_equal(fast, img)
        monkeypatch.delenv("CXRZOO_PNG_DECODER")
    sixteen = cv2.imencode(".png", deep)[1].tobytes()
    np.testing.assert_array_equal(read_image(sixteen, native_depth=True), deep)


def test_wuffs_and_opencv_agree_on_the_real_images(shared, monkeypatch):
    pytest.importorskip("pywuffs", exc_type=ImportError)  # not installed, or installed but not loadable
    paths = sorted(shared("data", "v7_covid_lungs", "val", "images").glob("*.png"))
    assert len(paths) == 60
    monkeypatch.delenv("CXRZOO_PNG_DECODER", raising=False)
    fast = [read_image(p, native_depth=True) for p in paths]
    monkeypatch.setenv("CXRZOO_PNG_DECODER", "opencv")
    for path, image in zip(paths, fast):
        np.testing.assert_array_equal(image, read_image(path, native_depth=True), err_msg=str(path))


@pytest.mark.parametrize("decoder", ["auto", "opencv"])
def test_corrupt_pixel_data_behind_valid_checksums_is_an_error_naming_the_file(tmp_path, monkeypatch, decoder):
    # Chunk CRCs recomputed over damaged compressed data: the checksum pre-check passes, so each decoder must fail
    # on its own and the error still name the file (Wuffs skips checksums inside PNGs, libpng does not).
    import struct
    import zlib

    monkeypatch.setenv("CXRZOO_PNG_DECODER", decoder)
    path = tmp_path / "damaged.png"
    Image.fromarray(RNG.integers(0, 256, (40, 40), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT")
    length = struct.unpack(">I", data[start - 4 : start])[0]
    data[start + 4 : start + 4 + length] = b"\xff" * length  # not a deflate stream
    data[start + 4 + length : start + 8 + length] = struct.pack(
        ">I", zlib.crc32(bytes(data[start : start + 4 + length]))
    )
    path.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match="damaged.png"):
        read_image(path)


def test_an_unknown_png_decoder_choice_is_refused(monkeypatch):
    from cxrzoo.preprocessing import png_decoder

    monkeypatch.setenv("CXRZOO_PNG_DECODER", "libspng")
    with pytest.raises(ValueError, match="CXRZOO_PNG_DECODER must be 'auto' or 'opencv'"):
        png_decoder()


def test_jpeg_colour_is_converted_like_keras_load_img(shared):
    # COVID-CXNet's inputs: Keras load_img(color_mode="grayscale") = Pillow convert("L"); the fixture is that output.
    gray = np.asarray(Image.open(shared("fixtures", "covid_cxnet", "beasf", "218_input_gray.png")))
    np.testing.assert_array_equal(read_image(shared("fixtures", "covid_cxnet", "images", "218.jpg")), gray)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "P", "1", "CMYK"])
def test_colour_modes_become_pillow_luma(tmp_path, mode):
    rgb = RNG.integers(0, 256, (19, 23, 3), dtype=np.uint8)
    source = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    source.save(path)
    expected = np.asarray(Image.open(path).convert("L")) if mode != "LA" else np.asarray(source.getchannel("L"))
    np.testing.assert_array_equal(read_image(path), expected)


def test_16bit_png_is_minmax_scaled_and_native_depth_is_kept(tmp_path):
    values = np.array([[0, 1000], [2000, 4000]], np.uint16)  # a 12-bit image in a 16-bit container
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    native = read_image(path, native_depth=True)
    assert native.dtype == np.uint16
    np.testing.assert_array_equal(native, values)
    np.testing.assert_array_equal(read_image(path), np.rint(values / 4000 * 255).astype(np.uint8))


@pytest.mark.parametrize("fill", [0, 65535])
def test_16bit_extremes(tmp_path, fill):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((5, 7), fill, np.uint16)).save(path)
    np.testing.assert_array_equal(read_image(path), np.zeros((5, 7), np.uint8))  # constant → zeros (documented)
    path2 = tmp_path / "ends.png"
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(path2)
    np.testing.assert_array_equal(read_image(path2), [[0, 255]])


def test_dicom_monochrome2_and_monochrome1(tmp_path, encode):
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8) * 4  # 0..252, steps of 4 → exact 8-bit values
    mono2 = read_image(encode.dicom(pixels))
    np.testing.assert_array_equal(mono2, np.rint(pixels / 252 * 255).astype(np.uint8))
    path = tmp_path / "m1.dcm"
    path.write_bytes(encode.dicom(pixels, photometric="MONOCHROME1"))
    np.testing.assert_array_equal(read_image(path), 255 - mono2)


def test_dicom_rescale_slope_intercept(encode):
    pixels = np.array([[0, 100], [200, 300]], np.uint16)
    native = read_image(encode.dicom(pixels, slope=2, intercept=-1024), native_depth=True)
    assert native.dtype == np.float32
    np.testing.assert_array_equal(native, pixels * 2.0 - 1024)


def test_dicom_window_maps_the_window_onto_0_255(encode):
    pixels = np.array([[0, 900, 1000, 1100, 4000]], np.uint16)
    out = read_image(encode.dicom(pixels, bits_stored=12, center=1000, width=200))
    assert out[0, 0] == 0 and out[0, 4] == 255  # outside the window: saturated
    assert out[0, 1] < out[0, 2] < out[0, 3] and abs(int(out[0, 2]) - 128) <= 1


def test_dicom_voi_lut_sequence(encode):
    table = np.arange(16)[::-1] * 1000  # a reversing LUT on stored values 10..25
    pixels = np.array([[0, 10, 17, 25, 300]], np.uint16)
    out = read_image(encode.dicom(pixels, voi_lut=(10, table)))
    # below first_map → first entry, above → last entry; the LUT's range 0..15000 maps onto 0..255
    np.testing.assert_array_equal(out, np.rint(np.array([[15, 15, 8, 0, 0]]) * 1000 / 15000 * 255))


def test_empty_truncated_and_foreign_files_name_the_file(tmp_path, encode):
    img = RNG.integers(0, 256, (40, 40), dtype=np.uint8)
    cases = {
        "empty.png": b"",
        "text.png": b"definitely not an image\n" * 10,
        "cut.png": encode.png(img)[:60],
        "cut.jpg": encode.jpeg(img)[:200],
        "cut.dcm": encode.dicom(img.astype(np.uint16))[:400],
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ImageReadError, match=name):
            read_image(path)
    with pytest.raises(ImageReadError, match="<bytes>"):
        read_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)


def test_missing_file_directory_and_wrong_types(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(IsADirectoryError):
        read_image(tmp_path)
    with pytest.raises(TypeError, match="already an image"):
        read_image(np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError):
        read_image(42)


def test_pixel_limit_is_enforced_before_decoding(tmp_path, encode):
    path = tmp_path / "big.png"
    path.write_bytes(encode.png(np.zeros((100, 100), np.uint8)))
    assert MAX_PIXELS == 64_000_000
    with pytest.raises(ValueError, match="exceeds the limit"):
        read_image(path, max_pixels=9_999)
    assert read_image(path, max_pixels=10_000).shape == (100, 100)
    with pytest.raises(ValueError, match="exceeds the limit"):
        read_image(encode.dicom(np.zeros((100, 100), np.uint16)), max_pixels=9_999)


def test_inside_tf_data_equals_the_eager_call(tmp_path, encode):
    import tensorflow as tf

    images = [RNG.integers(0, 256, shape, dtype=np.uint8) for shape in [(10, 12), (31, 7)]]
    paths = []
    for i, img in enumerate(images):
        paths.append(str(tmp_path / f"{i}.png"))
        (tmp_path / f"{i}.png").write_bytes(encode.png(img))
    ds = tf.data.Dataset.from_tensor_slices(paths).map(lambda p: read_image(tf.io.read_file(p)))
    for out, img in zip(ds, images):
        assert out.dtype == tf.uint8
        np.testing.assert_array_equal(out.numpy(), img)
    with pytest.raises(TypeError, match="tf.string"):
        read_image(tf.constant([1, 2]))
