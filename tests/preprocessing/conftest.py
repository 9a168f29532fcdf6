"""Fixtures for the preprocessing tests: real images from ../shared and small synthetic files in every format."""

from __future__ import annotations

import functools
import io
import types
from pathlib import Path

import numpy as np
import pytest


@functools.cache
def _load_folder(folder: str, every: int) -> tuple:
    from cxrzoo.preprocessing import read_image

    paths = sorted(Path(folder).glob("*.png"))[::every]
    return tuple((p.name, read_image(p)) for p in paths)


@pytest.fixture
def real_images(shared):
    """Real CXRs from ../shared/data as (name, uint8 image) pairs: every 3rd V7 validation image (20, about
    512 px), the 12 COVID-QU-Ex images (256 x 256) and every 5th infection-set image (14); or a skip."""
    sets = [
        (shared("data", "v7_covid_lungs", "val", "images"), 3),
        (shared("data", "covid_infection", "train", "images"), 5),
    ]
    qu = shared("data", "covid_qu_ex_sample", "Infection Segmentation Data", "Test")
    images = [item for folder, every in sets for item in _load_folder(str(folder), every)]
    for cls in sorted(qu.iterdir()):
        images += _load_folder(str(cls / "images"), 1)
    return images


@pytest.fixture
def encode():
    """Encoders for synthetic test files: ``encode.png(a)``, ``encode.jpeg(a)``, ``encode.dicom(a, ...)``."""
    return types.SimpleNamespace(png=encode_png, jpeg=encode_jpeg, dicom=encode_dicom)


def encode_png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def encode_jpeg(array: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def encode_dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 16,
    slope=None,
    intercept=None,
    center=None,
    width=None,
    voi_lut=None,
    signed: bool = False,
) -> bytes:
    """A minimal, valid DICOM file (explicit VR little endian) holding ``pixels`` (2-D, 16-bit)."""
    from pydicom import dcmwrite
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PixelData = pixels.astype("<i2" if signed else "<u2").tobytes()
    if slope is not None:
        ds.RescaleSlope = slope
        ds.RescaleIntercept = intercept
    if center is not None:
        ds.WindowCenter = center
        ds.WindowWidth = width
    if voi_lut is not None:
        first_map, table = voi_lut
        item = Dataset()
        item.add_new(0x00283002, "US", [len(table), first_map, 16])  # LUT Descriptor (VR ambiguous: US/SS)
        item.add_new(0x00283006, "US", [int(v) for v in table])  # LUT Data (VR ambiguous: US/OW)
        ds.VOILUTSequence = Sequence([item])
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()
