"""Score chest X-rays with the published CXR-Net and draw the authors' heat maps, from Python.

    python examples/predict_cxrnet.py IMAGE [IMAGE ...] [--out heatmaps/]

What ``cxrzoo predict --heatmaps -o out/ IMAGE ...`` does for CXR-Net, written out step by step: read the file
(PNG, JPEG or DICOM), prepare it as the authors did (300×340, 8-bit, histogram-equalized), run the end-to-end model
(Module 1 lung segmentation, the authors' mask, Module 2 ensemble) and compute the Grad-CAM maps in one pass.
The weights are downloaded once and verified by hash; offline, point ``CXRZOO_WEIGHTS_PATH`` at a folder holding
the published files. Research use only: CXR-Net is not a medical device.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import cxrzoo
from cxrzoo.models.cxrnet import cxrnet_figure, cxrnet_heatmaps
from cxrzoo.preprocessing import read_image


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("heatmaps"))
    args = parser.parse_args(argv)

    model = cxrzoo.build_cxrnet()  # Module 1 (V7 lungs) + Module 2 (6-member ensemble), published weights
    # full bit depth in, as the authors' min-max scaling expects (DICOMs are often 12-16 bit)
    batch = np.stack([cxrzoo.prepare_cxrnet_input(read_image(p, native_depth=True)) for p in args.images])
    maps = cxrnet_heatmaps(model, batch.astype("float32"))  # probabilities and maps for the whole batch

    args.out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(args.images):
        p_covid, p_other = maps["probabilities"][i]
        lungs = float(np.mean(maps["lung_mask"][i] > 0.5))
        print(f"{path.name}: COVID-19 {p_covid:.3f}, other {p_other:.3f}, lungs cover {lungs:.0%} of the image")
        figure = cxrnet_figure(batch[i], maps, i, title=path.name)
        figure.savefig(args.out / f"{path.stem}_heatmaps.png", bbox_inches="tight")


if __name__ == "__main__":
    main()
