"""Reading chest X-rays from PNG (8- and 16-bit), JPEG, TIFF, BMP, WebP and DICOM files into grayscale arrays."""

from __future__ import annotations

import functools
import io
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from cxrzoo.preprocessing import _dispatch

#: Largest image (height × width, per frame) :func:`read_image` decodes: 64 megapixels, e.g. 8000 × 8000.
#: Chest radiographs are at most about 4300 × 4300 (18 MP); anything larger is refused before its pixels are
#: decoded, so a malicious or corrupt header cannot make the reader allocate gigabytes.
MAX_PIXELS = 64_000_000

_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")


class ImageReadError(ValueError):
    """A file or byte string that is not a readable image (empty, truncated, corrupt or of an unknown format)."""


def read_image(source, *, native_depth: bool = False, max_pixels: int = MAX_PIXELS, name: str | None = None):
    """Read a chest X-ray as a grayscale ``(H, W)`` array.

    Args:
        source: a path (``str`` or ``os.PathLike``), the encoded bytes of a file, or a scalar ``tf.string`` tensor
            holding encoded bytes (e.g. ``tf.io.read_file(path)``; the result is then a ``uint8`` tensor).
        native_depth: return the stored bit depth instead of ``uint8``: ``uint8`` for 8-bit files, ``uint16`` for
            16-bit PNG/TIFF, ``float32`` for DICOM (after the modality and VOI transforms). Use it to hand
            full-precision data to :func:`cxrzoo.preprocessing.prepare_cxrnet_input`, whose min-max scaling works
            on >= 8-bit data like the CXR-Net authors'.
        max_pixels: images with more pixels than this (per frame) are refused before decoding (default
            :data:`MAX_PIXELS`).
        name: for encoded bytes, the file they came from: named in error messages, and its suffix tells DICOM
            files without the ``DICM`` preamble apart (e.g. bytes already read to hash them).

    Conversions (all documented choices; see docs/preprocessing.md):
        - colour (RGB, RGBA, palette, CMYK) becomes gray with Pillow's ITU-R 601-2 luma ``L = (299 R + 587 G +
          114 B) / 1000``; alpha is ignored. This is what Keras ``load_img(color_mode="grayscale")`` does, so
          COVID-CXNet's inputs are reproduced exactly. EXIF orientation is not applied (neither does Keras).
        - 16-bit (and 32-bit integer or float) grayscale is min-max scaled to 0..255 and rounded; a constant image
          becomes all zeros.
        - DICOM (needs ``pip install cxrzoo[dicom]``): the first frame; the modality transform (rescale slope and
          intercept, or a modality LUT), then the VOI transform (VOI LUT sequence, else window center/width) whose
          output range is mapped linearly to 0..255; without a VOI transform the data are min-max scaled.
          MONOCHROME1 images are inverted so that bone is bright, as in MONOCHROME2.

    Raises:
        FileNotFoundError: the path does not exist.
        ImageReadError: empty, truncated or corrupt data, or an unknown format; the message names the file.
        ValueError: the image exceeds ``max_pixels`` or has a zero dimension.
        ImportError: a DICOM file and pydicom is not installed.

    Example::

        img = read_image("cxr.png")           # uint8 (H, W)
        raw = read_image("cxr.dcm", native_depth=True)
    """
    if _dispatch.is_tensor(source):
        import tensorflow as tf

        if source.dtype != tf.string:
            raise TypeError(f"read_image expects a tf.string tensor of encoded bytes, got dtype {source.dtype.name}")

        def _kernel(data):
            return read_image(bytes(data), native_depth=False, max_pixels=max_pixels)

        return _dispatch.run(_kernel, source, dtype=tf.uint8, shape=(None, None), name="read_image")

    data, source_name, suffix = _load_source(source)
    if name is not None and isinstance(source, (bytes, bytearray, memoryview)):
        source_name, suffix = str(name), Path(str(name)).suffix.lower()
    name = source_name
    if not data:
        raise ImageReadError(f"{name}: the file is empty (0 bytes)")
    if _looks_like_dicom(data, suffix):
        image, value_range = _decode_dicom(data, name, max_pixels)
    else:
        image, value_range = _decode_gray_png(data, name, max_pixels), None
        if image is None:
            image = _decode_pil(data, name, max_pixels)
    if native_depth or image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return minmax_to_uint8(image, value_range, name)


def _load_source(source) -> tuple[bytes, str, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "<bytes>", ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise IsADirectoryError(f"{path}: is a directory, not an image file")
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such image file") from None
        return data, str(path), path.suffix.lower()
    if isinstance(source, np.ndarray):
        raise TypeError("read_image reads files or encoded bytes; got a NumPy array (it is already an image)")
    raise TypeError(f"read_image expects a path, bytes or a tf.string tensor, got {type(source).__name__}")


def _looks_like_dicom(data: bytes, suffix: str) -> bool:
    return data[128:132] == b"DICM" or suffix in _DICOM_SUFFIXES


def _check_size(height: int, width: int, name: str, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"{name}: the image has a zero dimension ({height} x {width})")
    if height * width > max_pixels:
        raise ValueError(
            f"{name}: {width} x {height} = {width * height:,} pixels exceeds the limit of "
            f"{max_pixels:,} (cxrzoo.preprocessing.MAX_PIXELS; pass max_pixels= to raise it)"
        )


def _decode_pil(data: bytes, name: str, max_pixels: int) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies (Pillow's bomb warning would only duplicate it), and damaged metadata that
            # Pillow tolerates (e.g. corrupt EXIF) is not the reader's business: no warnings from in here.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as img:
                width, height = img.size
                _check_size(height, width, name, max_pixels)
                img.load()
                return _pil_to_gray(img)
    except ValueError as err:
        if str(err).startswith(name):
            raise
        raise ImageReadError(f"{name}: not a readable image ({err})") from None
    except (
        OSError,
        SyntaxError,
        EOFError,
        IndexError,
        TypeError,
        KeyError,
        AttributeError,
        Image.DecompressionBombError,
    ) as err:
        reason = str(err) or type(err).__name__
        raise ImageReadError(f"{name}: not a readable image ({reason})") from None


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode_gray_png(data: bytes, name: str, max_pixels: int) -> np.ndarray | None:
    """Plain 8- or 16-bit grayscale PNGs (the common case for CXRs) decoded by OpenCV, which is faster than Pillow
    and gives the same pixels, or by Wuffs (non-interlaced 8-bit, when :func:`png_decoder` says so), faster still.

    Only well-formed files take this path: every chunk's CRC is checked first (so libpng never prints errors about
    a damaged file) and files with transparency are excluded. An embedded colour profile, about which libpng
    prints warnings for gray images and which no reader here applies, is cut out of the stream handed to OpenCV
    (9% of the V7 sample has one). Everything else returns None and goes through Pillow, which also reports the
    errors.
    """
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    width, height = struct.unpack(">II", data[16:24])
    bit_depth, colour_type = data[24], data[25]
    if colour_type != 0 or bit_depth not in (8, 16):
        return None
    _check_size(height, width, name, max_pixels)
    position = len(_PNG_SIGNATURE)
    view = memoryview(data)
    profile = None
    while True:
        if position + 12 > len(data):
            return None  # truncated
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        end = position + 12 + length
        if end > len(data) or zlib.crc32(view[position + 4 : end - 4]) != struct.unpack(">I", data[end - 4 : end])[0]:
            return None
        if kind == b"tRNS" or (kind == b"iCCP" and profile is not None):
            return None
        if kind == b"iCCP":
            profile = (position, end)
        if kind == b"IEND":
            break
        position = end
    if bit_depth == 8 and data[28] == 0:  # not interlaced: the layout the equality tests cover
        out = _decode_gray8_wuffs(data, height, width)
        if out is not None:
            return out
    if profile is not None:
        data = data[: profile[0]] + data[profile[1] :]
    import cv2

    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if out is None or out.shape != (height, width) or out.dtype != (np.uint8 if bit_depth == 8 else np.uint16):
        return None
    return out


#: Environment variable choosing the decoder of plain 8-bit gray PNGs: "auto" (default: Wuffs when the optional
#: ``fast-png`` extra is installed, else OpenCV) or "opencv".
PNG_DECODER_ENV = "CXRZOO_PNG_DECODER"


def png_decoder() -> str:
    """The decoder :func:`read_image` uses for plain 8-bit gray PNGs: "wuffs" or "opencv".

    Wuffs (Google's memory-safe decoders, through the optional ``pywuffs`` binding: ``pip install
    'cxrzoo[fast-png]'``, built from source) decodes them about 25% faster than libpng, which OpenCV, Pillow and
    TensorFlow use, with identical pixels; it is used when importable unless ``CXRZOO_PNG_DECODER=opencv``.
    Other PNGs (16-bit, colour, transparency) always go through OpenCV or Pillow.
    """
    choice = os.environ.get(PNG_DECODER_ENV, "auto").lower()
    if choice not in ("auto", "opencv"):
        raise ValueError(f"{PNG_DECODER_ENV} must be 'auto' or 'opencv', got {choice!r}")
    return "wuffs" if choice == "auto" and _wuffs() is not None else "opencv"


@functools.cache
def _wuffs():
    """``(pywuffs, pywuffs.aux)``, or None when the extra is not installed."""
    try:
        import pywuffs
        from pywuffs import aux
    except ImportError:
        return None
    return pywuffs, aux


def _decode_gray8_wuffs(data: bytes, height: int, width: int) -> np.ndarray | None:
    """An 8-bit gray PNG (header and chunk CRCs already checked) decoded by Wuffs, or None (not installed, turned
    off, or any error: the caller then decodes with OpenCV, and Pillow reports what is wrong)."""
    if png_decoder() != "wuffs":
        return None
    pywuffs, aux = _wuffs()
    config = aux.ImageDecoderConfig()  # a decoder is not thread-safe and costs ~2 µs: one per call
    config.enabled_decoders = [pywuffs.ImageDecoderType.PNG]
    config.pixel_format = pywuffs.PixelFormat.Y
    result = aux.ImageDecoder(config).decode(data)
    pixels = result.pixbuf
    if result.error_message or pixels.dtype != np.uint8 or pixels.shape != (height, width, 1):
        return None
    return pixels.reshape(height, width)


def _pil_to_gray(img) -> np.ndarray:
    mode = img.mode
    if mode == "L":
        return np.asarray(img)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(img).astype(np.uint16)
    if mode in ("I", "F"):
        array = np.asarray(img)
        if mode == "I" and array.size and array.min() >= 0 and array.max() <= 65535:
            return array.astype(np.uint16)
        return array.astype(np.float32)
    if mode == "LA":
        return np.asarray(img.getchannel("L"))
    return np.asarray(img.convert("L"))


def minmax_to_uint8(image: np.ndarray, value_range: tuple[float, float] | None, name: str) -> np.ndarray:
    """Map ``value_range`` (default: the image's own min and max) linearly onto 0..255, rounding."""
    image = image.astype(np.float64, copy=False)
    if not np.all(np.isfinite(image)):
        raise ImageReadError(f"{name}: the image contains NaN or infinite values")
    lo, hi = value_range if value_range is not None else (float(image.min()), float(image.max()))
    if hi <= lo:
        return np.zeros(image.shape, np.uint8)
    scaled = (image - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _decode_dicom(data: bytes, name: str, max_pixels: int) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The first frame as float32 after the modality and VOI transforms, and the VOI output range (or None)."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(f"{name} is a DICOM file; reading it needs pydicom: pip install 'cxrzoo[dicom]'") from None
    try:
        with warnings.catch_warnings():  # pydicom warns about every malformed tag it tolerates
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
        if "PixelData" not in ds:
            raise ImageReadError(f"{name}: the DICOM file has no pixel data")
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        _check_size(int(ds.Rows), int(ds.Columns), name, max_pixels)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
        if frames > 1:
            pixels = pixels[0]
        photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
        if pixels.ndim == 3:
            gray = pixels[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
            return gray.astype(np.float32), None
        if pixels.ndim != 2:
            raise ImageReadError(f"{name}: unsupported DICOM pixel array of shape {pixels.shape}")
        values = apply_modality_lut(pixels, ds).astype(np.float64)
        value_range = None
        if ds.get("VOILUTSequence") or ("WindowCenter" in ds and "WindowWidth" in ds):
            domain = _voi_domain(ds, values)
            if ds.get("VOILUTSequence"):  # a LUT is indexed by integer stored values
                values, domain = np.rint(values).astype(np.int64), domain.astype(np.int64)
            values = np.asarray(apply_voi_lut(values, ds), np.float64)
            mapped = np.asarray(apply_voi_lut(domain, ds), np.float64)
            value_range = (float(mapped.min()), float(mapped.max()))
    except (ImageReadError, ValueError) as err:
        if str(err).startswith(name):
            raise
        raise ImageReadError(f"{name}: not a readable DICOM image ({err})") from None
    except Exception as err:  # pydicom raises a wide range of types on corrupt files
        raise ImageReadError(f"{name}: not a readable DICOM image ({type(err).__name__}: {err})") from None
    if photometric == "MONOCHROME1":
        low, high = value_range if value_range is not None else (float(values.min()), float(values.max()))
        values = (low + high) - values
    return values.astype(np.float32), value_range


def _voi_domain(ds, values: np.ndarray) -> np.ndarray:
    """The inputs whose VOI outputs span the VOI output range: the LUT's whole domain, or two far-out values."""
    if ds.get("VOILUTSequence"):
        first_map = int(ds.VOILUTSequence[0].LUTDescriptor[1])
        entries = int(ds.VOILUTSequence[0].LUTDescriptor[0]) or 2**16
        return np.arange(first_map, first_map + entries, dtype=np.float64)
    span = float(np.abs(values).max()) + 1e6
    return np.array([-span, span])
