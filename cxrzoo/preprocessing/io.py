"""Reading chest X-rays from PNG (8- and 16-bit), JPEG, TIFF, BMP, WebP and DICOM files into grayscale arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tensorflow as tf

import functools
import io
import math
import os
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cxrzoo.inputs import (
    ENV_MAX_FILE_BYTES,
    MAX_FILE_BYTES,  # noqa: F401 (the file size cap, documented with read_image)
    InputFileError,
    InputTooLargeError,
    max_file_bytes,
    read_regular_file,
)
from cxrzoo.preprocessing import _dispatch

#: Largest image (height × width, per frame) :func:`read_image` decodes: 64 megapixels, e.g. 8000 × 8000.
#: Chest radiographs are at most about 4300 × 4300 (18 MP); anything larger is refused before its pixels are
#: decoded, so a malicious or corrupt header cannot make the reader allocate gigabytes.
MAX_PIXELS = 64_000_000

#: Largest pixel data a header may declare (128 MiB): rows × columns × frames × samples per pixel × bytes per
#: sample, as stored (Pillow keeps colour images at 4 bytes per pixel). An 8000 × 8000 16-bit gray image fits;
#: the same image at 32 bits, in colour or with a second frame does not. Checked before anything is decoded.
MAX_PIXEL_BYTES = 128 * 2**20

#: The shortest side a chest radiograph may have when the caller asks for the radiograph check (``min_side=``;
#: ``cxrzoo predict`` does): 128 px. The smallest public CXR sets are 224-256 px; anything smaller is a thumbnail,
#: an icon or a strip of pixels, which the models would still score with confidence.
MIN_SIDE = 128

#: The largest ratio of long to short side a chest radiograph may have under the radiograph check
#: (``max_aspect=``): 3.0. Frontal and lateral CXRs are between 0.7 and 1.5.
MAX_ASPECT = 3.0

_PIL_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WEBP", "GIF")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
_DEFLATED_UID = "1.2.840.10008.1.2.1.99"
_INFLATE_STEP = 1 << 20  # output produced per inflate step; the header is checked after the first one


class ImageReadError(InputFileError):
    """A file or byte string that is not a readable image (empty, truncated, corrupt, of an unknown format, or
    not a regular file)."""


class ImageTooLargeError(ImageReadError, InputTooLargeError):
    """An image refused for its size before decoding: the file, its pixel count or its declared pixel data is over
    a limit (:data:`MAX_PIXELS`, :data:`MAX_PIXEL_BYTES`, the file size cap), or memory ran out decoding it."""


class ImageShapeError(ImageReadError):
    """An image that cannot be a chest radiograph: a side shorter than ``min_side`` or an aspect ratio above
    ``max_aspect`` (only when the caller asks for the check)."""


class _Limits(NamedTuple):
    max_pixels: int
    max_pixel_bytes: int
    max_bytes: int
    min_side: int
    max_aspect: float | None


def read_image(
    source: str | os.PathLike | bytes | bytearray | memoryview | tf.Tensor,
    *,
    native_depth: bool = False,
    max_pixels: int = MAX_PIXELS,
    max_pixel_bytes: int = MAX_PIXEL_BYTES,
    max_bytes: int | None = None,
    min_side: int = 0,
    max_aspect: float | None = None,
    name: str | None = None,
) -> np.ndarray | tf.Tensor:
    """Read a chest X-ray as a grayscale ``(H, W)`` array.

    Args:
        source: a path (``str`` or ``os.PathLike``), the encoded bytes of a file, or a scalar ``tf.string`` tensor
            holding encoded bytes (e.g. ``tf.io.read_file(path)``; the result is then a ``uint8`` tensor).
        native_depth: return the stored bit depth instead of ``uint8``: ``uint8`` for 8-bit files, ``uint16`` for
            16-bit PNG/TIFF, ``float32`` for DICOM (after the modality and VOI transforms). Use it to hand
            full-precision data to :func:`cxrzoo.models.cxrnet.prepare_cxrnet_input`, whose min-max scaling works
            on >= 8-bit data like the CXR-Net authors'.
        max_pixels: images with more pixels than this (per frame) are refused before decoding (default
            :data:`MAX_PIXELS`).
        max_pixel_bytes: images whose header declares more pixel data than this (all frames, samples and bits)
            are refused before decoding (default :data:`MAX_PIXEL_BYTES`).
        max_bytes: files larger than this are refused before they are read, and a deflated DICOM data set may
            not inflate beyond it (default ``$CXRZOO_MAX_FILE_BYTES``, else :data:`cxrzoo.inputs.MAX_FILE_BYTES`,
            256 MiB).
        min_side, max_aspect: the radiograph check, off by default: refuse an image whose shorter side is below
            ``min_side`` or whose long/short side ratio exceeds ``max_aspect`` (:data:`MIN_SIDE` and
            :data:`MAX_ASPECT` are the values ``cxrzoo predict`` uses). Checked from the header, before decoding.
        name: for encoded bytes, the file they came from: named in error messages, and its suffix tells DICOM
            files without the ``DICM`` preamble apart (e.g. bytes already read to hash them).

    Conversions (all documented choices; see docs/preprocessing.md):
        - colour (RGB, RGBA, palette, CMYK) becomes gray with Pillow's ITU-R 601-2 luma ``L = (299 R + 587 G +
          114 B) / 1000``; alpha is ignored. This is what Keras ``load_img(color_mode="grayscale")`` does, so
          COVID-CXNet's inputs are reproduced exactly. EXIF orientation is not applied (neither does Keras).
        - 16-bit (and 32-bit integer or float) grayscale is min-max scaled to 0..255 and rounded; a constant image
          becomes all zeros.
        - DICOM (needs ``pip install cxrzoo[dicom]``): the first frame (the only one decoded); the modality
          transform (rescale slope and intercept, or a modality LUT), then the VOI transform (VOI LUT sequence,
          else window center/width) whose output range is mapped linearly to 0..255; without a VOI transform the
          data are min-max scaled. MONOCHROME1 images are inverted so that bone is bright, as in MONOCHROME2.

    Only regular files are read (see :mod:`cxrzoo.inputs` and docs/security.md).

    Raises:
        FileNotFoundError: the path does not exist.
        IsADirectoryError: the path is a folder.
        ImageReadError: not a regular file (FIFO, device, socket), empty, truncated or corrupt data, an unknown
            format, or a DICOM rescale slope of 0; the message names the file.
        ImageTooLargeError: (an ImageReadError) the file, the image or its declared pixel data exceeds a limit, or
            memory ran out while decoding it.
        ImageShapeError: (an ImageReadError) the radiograph check failed.
        ImportError: a DICOM file and pydicom is not installed.

    All of these but ImportError are ``ValueError`` or ``OSError``, so a caller looping over files can report one
    and go on.

    Example::

        img = read_image("cxr.png")           # uint8 (H, W)
        raw = read_image("cxr.dcm", native_depth=True)
    """
    if _dispatch.is_tensor(source):
        import tensorflow as tf

        if source.dtype != tf.string:
            raise TypeError(f"read_image expects a tf.string tensor of encoded bytes, got dtype {source.dtype.name}")

        def _kernel(data):
            return read_image(
                bytes(data),
                native_depth=False,
                max_pixels=max_pixels,
                max_pixel_bytes=max_pixel_bytes,
                max_bytes=max_bytes,
                min_side=min_side,
                max_aspect=max_aspect,
            )

        return _dispatch.run(_kernel, source, dtype=tf.uint8, shape=(None, None), name="read_image")

    limits = _Limits(int(max_pixels), int(max_pixel_bytes), max_file_bytes(max_bytes), int(min_side), max_aspect)
    data, source_name, suffix = _load_source(source, limits.max_bytes)
    if name is not None and isinstance(source, (bytes, bytearray, memoryview)):
        source_name, suffix = str(name), Path(str(name)).suffix.lower()
    name = source_name
    try:
        if not data:
            raise ImageReadError(f"{name}: the file is empty (0 bytes)")
        if _looks_like_dicom(data, suffix):
            image, value_range = _decode_dicom(data, name, limits)
        else:
            image, value_range = _decode_gray_png(data, name, limits), None
            if image is None:
                image = _decode_pil(data, name, limits)
        if native_depth or image.dtype == np.uint8:
            return np.ascontiguousarray(image)
        return minmax_to_uint8(image, value_range, name)
    except MemoryError:
        # one oversized or hostile file must not end a run over a folder: report it like any unreadable file
        raise ImageTooLargeError(f"{name}: not enough memory to decode this image") from None


def _load_source(source, max_bytes: int) -> tuple[bytes, str, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise ImageTooLargeError(
                f"<bytes>: {len(source):,} bytes, over the limit of {max_bytes:,} "
                f"(${ENV_MAX_FILE_BYTES} or max_bytes= raises it)"
            )
        return bytes(source), "<bytes>", ""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            data = read_regular_file(path, max_bytes=max_bytes, error=ImageReadError, too_large=ImageTooLargeError)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such image file") from None
        except IsADirectoryError:
            raise IsADirectoryError(f"{path}: is a directory, not an image file") from None
        except MemoryError:
            raise ImageTooLargeError(f"{path}: not enough memory to read the file") from None
        return data, str(path), path.suffix.lower()
    if isinstance(source, np.ndarray):
        raise TypeError("read_image reads files or encoded bytes; got a NumPy array (it is already an image)")
    raise TypeError(f"read_image expects a path, bytes or a tf.string tensor, got {type(source).__name__}")


def _looks_like_dicom(data: bytes, suffix: str) -> bool:
    return data[128:132] == b"DICM" or suffix in _DICOM_SUFFIXES


def _check_size(
    height: int, width: int, name: str, limits: _Limits, *, bytes_per_pixel: float = 1, frames: int = 1
) -> None:
    """Refuses, from header values alone, an image that is empty, over a limit or (if asked) not radiograph-shaped."""
    if height <= 0 or width <= 0:
        raise ImageReadError(f"{name}: the image has a zero dimension ({height} x {width})")
    if height * width > limits.max_pixels:
        raise ImageTooLargeError(
            f"{name}: {width} x {height} = {width * height:,} pixels exceeds the limit of "
            f"{limits.max_pixels:,} (cxrzoo.preprocessing.MAX_PIXELS; pass max_pixels= to "
            "raise it)"
        )
    declared = math.ceil(height * width * frames * bytes_per_pixel)
    if declared > limits.max_pixel_bytes:
        raise ImageTooLargeError(
            f"{name}: the header declares {declared:,} bytes of pixel data ({width} x {height}"
            f"{f' x {frames} frames' if frames > 1 else ''}), which exceeds the limit of "
            f"{limits.max_pixel_bytes:,} (cxrzoo.preprocessing.MAX_PIXEL_BYTES; pass "
            "max_pixel_bytes= to raise it)"
        )
    short, long = min(height, width), max(height, width)
    if short < limits.min_side:
        raise ImageShapeError(
            f"{name}: {width} x {height} pixels is too small for a chest radiograph (shorter side "
            f"under {limits.min_side} px)"
        )
    if limits.max_aspect is not None and long / short > limits.max_aspect:
        raise ImageShapeError(
            f"{name}: {width} x {height} pixels (aspect ratio {long / short:.1f}) is not shaped "
            f"like a chest radiograph (limit {limits.max_aspect:g})"
        )


_PIL_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_STREAM_REPR = re.compile(r"<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def _decode_pil(data: bytes, name: str, limits: _Limits) -> np.ndarray:
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies (Pillow's bomb warning would only duplicate it), and damaged metadata that
            # Pillow tolerates (e.g. corrupt EXIF) is not the reader's business: no warnings from in here.
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=_PIL_FORMATS) as img:
                width, height = img.size
                # Pillow holds multi-band 8-bit and 32-bit images at 4 bytes per pixel
                _check_size(height, width, name, limits, bytes_per_pixel=_PIL_BYTES_PER_PIXEL.get(img.mode, 4))
                img.load()
                return _pil_to_gray(img)
    except ValueError as err:
        if str(err).startswith(name):
            raise
        raise ImageReadError(f"{name}: not a readable image ({_reason(err, name)})") from None
    except Image.DecompressionBombError as err:  # Pillow's own check at open, on a header claiming billions
        raise ImageTooLargeError(f"{name}: refused before decoding ({_reason(err, name)})") from None
    except (OSError, SyntaxError, EOFError, IndexError, TypeError, KeyError, AttributeError) as err:
        raise ImageReadError(f"{name}: not a readable image ({_reason(err, name)})") from None


def _reason(err: Exception, name: str) -> str:
    """An exception's text for an error message, with the in-memory stream the decoders saw replaced by the name
    of what was read (Pillow says "cannot identify image file <_io.BytesIO object at 0x7f...>")."""
    return _STREAM_REPR.sub(name, str(err)) or type(err).__name__


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _decode_gray_png(data: bytes, name: str, limits: _Limits) -> np.ndarray | None:
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
    _check_size(height, width, name, limits, bytes_per_pixel=bit_depth // 8)
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


def _decode_dicom(data: bytes, name: str, limits: _Limits) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The first frame as float32 after the modality and VOI transforms, and the VOI output range (or None).

    The pixel budget is checked from the header (rows, columns, frames, samples per pixel, bits allocated) before
    any pixel is decoded, a deflated data set is inflated step by step under the size cap (its header is checked
    after the first step, so a bomb is refused having inflated about a megabyte), and only the first frame is
    decoded.
    """
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array
    except ImportError:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(f"{name} is a DICOM file; reading it needs pydicom: pip install 'cxrzoo[dicom]'") from None
    try:
        with warnings.catch_warnings():  # pydicom warns about every malformed tag it tolerates
            warnings.simplefilter("ignore")
            ds = _read_dicom_dataset(data, name, limits)
            if "PixelData" not in ds:
                raise ImageReadError(f"{name}: the DICOM file has no pixel data")
            _check_dicom_header(ds, name, limits)
            _check_rescale(ds, name)
            pixels = pixel_array(ds, index=0)  # the first frame only: a multi-frame file costs one frame
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
        if isinstance(err, ImageReadError) or str(err).startswith(name):
            raise
        raise ImageReadError(f"{name}: not a readable DICOM image ({_reason(err, name)})") from None
    except MemoryError:
        raise
    except Exception as err:  # pydicom raises a wide range of types on corrupt files
        raise ImageReadError(
            f"{name}: not a readable DICOM image ({type(err).__name__}: {_reason(err, name)})"
        ) from None
    if photometric == "MONOCHROME1":
        low, high = value_range if value_range is not None else (float(values.min()), float(values.max()))
        values = (low + high) - values
    return values.astype(np.float32), value_range


def _read_dicom_dataset(data: bytes, name: str, limits: _Limits):
    """The parsed data set; a deflated one is inflated here, under the cap, never by pydicom (which would inflate
    it whole before anything could be checked)."""
    import pydicom
    from pydicom.filereader import _read_file_meta_info, read_preamble

    stream = io.BytesIO(data)
    read_preamble(stream, True)
    meta = _read_file_meta_info(stream)
    if str(meta.get("TransferSyntaxUID", "")) != _DEFLATED_UID:
        return pydicom.dcmread(io.BytesIO(data), force=True)
    inflated = _inflate(memoryview(data)[stream.tell() :], name, limits)
    dataset = _parse_explicit_le(inflated)
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian  # what the inflated bytes now are
    dataset.file_meta = meta
    return dataset


def _parse_explicit_le(data: bytes, *, header_only: bool = False):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    stop = (lambda tag, vr, length: tag >= 0x7FE00000) if header_only else None
    return read_dataset(DicomBytesIO(data), is_implicit_VR=False, is_little_endian=True, stop_when=stop)


def _inflate(compressed, name: str, limits: _Limits) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pending = bytes(compressed)
    header_checked = False
    while True:
        chunk = inflater.decompress(pending, _INFLATE_STEP)
        progressed = bool(chunk) or len(inflater.unconsumed_tail) < len(pending)
        pending = inflater.unconsumed_tail
        out += chunk
        if len(out) > limits.max_bytes:
            raise ImageTooLargeError(
                f"{name}: the deflated DICOM data set inflates to more than {limits.max_bytes:,} "
                f"bytes (${ENV_MAX_FILE_BYTES} or max_bytes= raises the limit)"
            )
        done = inflater.eof or not pending or not progressed
        if not header_checked and (len(out) >= _INFLATE_STEP or done):
            # Once: the image elements (group 0028) come early. A bomb is refused here, after one step; a header
            # pushed beyond the first step by filler elements is checked after inflation, the size cap still holding.
            header_checked = True
            try:
                header = _parse_explicit_le(bytes(out), header_only=True)
            except Exception:  # a truncated prefix may break anywhere; the full parse reports real damage
                header = {}
            if "Rows" in header and "Columns" in header:
                _check_dicom_header(header, name, limits)
        if done:
            return bytes(out)


def _check_dicom_header(ds, name: str, limits: _Limits) -> None:
    """The pixel budget from the header: rows x columns x frames x samples per pixel x bytes allocated."""
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.BitsAllocated)
    except AttributeError as err:
        raise ImageReadError(f"{name}: the DICOM header lacks {err.name or 'a required element'}") from None
    except (TypeError, ValueError) as err:
        raise ImageReadError(f"{name}: the DICOM header has an invalid image size ({err})") from None
    if frames < 1 or samples < 1 or not 1 <= bits <= 64:
        raise ImageReadError(
            f"{name}: the DICOM header is invalid ({frames} frames, {samples} samples per pixel, {bits} bits allocated)"
        )
    _check_size(rows, columns, name, limits, bytes_per_pixel=samples * math.ceil(bits / 8), frames=frames)


def _check_rescale(ds, name: str) -> None:
    """A rescale slope of 0 (or not finite) maps every pixel to one value: the image would be blank."""
    if "ModalityLUTSequence" in ds or "RescaleSlope" not in ds or "RescaleIntercept" not in ds:
        return
    try:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
    except (TypeError, ValueError) as err:
        raise ImageReadError(f"{name}: the DICOM rescale slope or intercept is not a number ({err})") from None
    if slope == 0 or not (math.isfinite(slope) and math.isfinite(intercept)):
        raise ImageReadError(
            f"{name}: the DICOM rescale slope is {slope:g} and intercept {intercept:g}, which map "
            "every pixel to the same value; the file's modality transform is broken"
        )


def _voi_domain(ds, values: np.ndarray) -> np.ndarray:
    """The inputs whose VOI outputs span the VOI output range: the LUT's whole domain, or two far-out values."""
    if ds.get("VOILUTSequence"):
        first_map = int(ds.VOILUTSequence[0].LUTDescriptor[1])
        entries = int(ds.VOILUTSequence[0].LUTDescriptor[0]) or 2**16
        return np.arange(first_map, first_map + entries, dtype=np.float64)
    span = float(np.abs(values).max()) + 1e6
    return np.array([-span, span])
