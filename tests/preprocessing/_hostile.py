"""Hostile image files for the input-safety tests: decompression bombs and headers that lie, built small.

The pixel data of the DICOM bombs is streamed through zlib, so a file declaring gigabytes is made without ever
holding them in memory.
"""

from __future__ import annotations

import io
import struct
import zlib

DEFLATED = "1.2.840.10008.1.2.1.99"
_STEP = 1 << 24


def dicom_header_dataset(
    rows: int, columns: int, *, frames: int = 1, bits: int = 16, samples: int = 1, photometric: str = "MONOCHROME2"
):
    """The non-pixel part of a DICOM image data set, as a pydicom Dataset."""
    from pydicom.dataset import Dataset
    from pydicom.uid import SecondaryCaptureImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "DX"
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples > 1:
        ds.PlanarConfiguration = 0
    ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    return ds


def _file_meta(ds, transfer_syntax: str) -> bytes:
    from pydicom.dataset import FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = transfer_syntax
    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + buf.getvalue()


def _body(ds) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    buf = DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_dataset(buf, ds)
    return buf.getvalue()


def _pixel_element_header(length: int, bits: int) -> bytes:
    vr = b"OW" if bits > 8 else b"OB"
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, vr, 0, length)


def deflated_dicom_bomb(rows: int, columns: int, *, frames: int, bits: int = 16, samples: int = 1) -> bytes:
    """A deflated DICOM whose zero-valued pixel data (all frames) inflates to rows x columns x frames x samples x
    bits / 8 bytes; the file itself is about a thousandth of that."""
    ds = dicom_header_dataset(rows, columns, frames=frames, bits=bits, samples=samples)
    length = rows * columns * frames * samples * bits // 8
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [_file_meta(ds, DEFLATED), deflater.compress(_body(ds) + _pixel_element_header(length, bits))]
    zeros = bytes(_STEP)
    remaining = length
    while remaining:
        step = min(remaining, _STEP)
        parts.append(deflater.compress(zeros[:step]))
        remaining -= step
    parts.append(deflater.flush())
    return b"".join(parts)


def native_dicom(
    rows: int,
    columns: int,
    pixel_data: bytes,
    *,
    frames: int = 1,
    bits: int = 16,
    transfer_syntax: str = "1.2.840.10008.1.2.1",
    photometric: str = "MONOCHROME2",
    samples: int = 1,
) -> bytes:
    """A DICOM with the given header values and raw pixel data (which need not match them)."""
    ds = dicom_header_dataset(rows, columns, frames=frames, bits=bits, samples=samples, photometric=photometric)
    body = _body(ds) + _pixel_element_header(len(pixel_data) + len(pixel_data) % 2, bits) + pixel_data
    body += b"\0" * (len(pixel_data) % 2)
    if transfer_syntax == DEFLATED:
        deflater = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = deflater.compress(body) + deflater.flush()
    return _file_meta(ds, transfer_syntax) + body


def png_header_only(width: int, height: int, *, bit_depth: int = 8, colour_type: int = 0) -> bytes:
    """A PNG whose IHDR claims ``width x height`` followed by a tiny IDAT: a 'bomb' by header alone."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")
    )


def jpeg_header_only(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to claim ``width x height``."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)
