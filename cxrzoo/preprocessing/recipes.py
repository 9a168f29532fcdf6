"""Each paper's preparation of a chest X-ray, as a named, inspectable :class:`Recipe`.

A recipe turns one grayscale image (any size, 8-bit or deeper) into the float32 ``(H, W, C)`` array its model was
trained on, and moves label masks through the same geometry (nearest neighbour, so labels stay labels). Recipes run
on NumPy arrays, and on tensors inside ``tf.data`` (one ``tf.numpy_function`` per image, so the numbers are the
same both ways). docs/preprocessing.md says, recipe by recipe, which details the papers state and which are
choices made here.

Example::

    from cxrzoo.preprocessing import read_image, recipe
    prep = recipe("covid_cxnet")
    x = prep(read_image("cxr.png"))         # float32 (320, 320, 3) in [0, 1]
    print(prep)                             # the steps, in order
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from cxrzoo.preprocessing import _dispatch
from cxrzoo.preprocessing.enhance import complement, three_channel, to_gray
from cxrzoo.preprocessing.geometry import center_crop, crop_top, resize
from cxrzoo.preprocessing.histogram import clahe, equalize_hist, match_histogram
from cxrzoo.preprocessing.io import minmax_to_uint8, read_image

#: CXR-Net's network input: height 300, width 340.
CXRNET_SIZE = (300, 340)
#: Module 2 standardization of X (``standardization_parameters_V7.json``; the JMS file has the same values).
CXRNET_MEAN = 124.07157127013421
CXRNET_STD = 75.97485671901313
#: ImageNet statistics on the [0, 1] scale (torchvision's), used by the thesis recipes.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("unit", "imagenet")

MaskList = list  # of 2-D uint8 arrays


# ------------------------------------------------------------------------------------------------------ inputs


def _gray(image, op: str) -> np.ndarray:
    """A 2-D numeric image of any depth: colour → luma, a trailing channel axis of 1 dropped."""
    if not isinstance(image, np.ndarray) or image.dtype.kind not in "uif":
        raise TypeError(f"{op} expects a numeric image array, got {_dispatch.describe(image)}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] in (3, 4):
        image = to_gray(image)
    if image.ndim != 2:
        raise ValueError(f"{op} expects an (H, W), (H, W, 1) or (H, W, 3|4) image, got shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"{op} got an empty image of shape {image.shape}")
    return image


def _gray_uint8(image, op: str = "recipe") -> np.ndarray:
    """:func:`_gray`, then deeper data min-max scaled to uint8 (rounded), like :func:`read_image`."""
    image = _gray(image, op)
    return image if image.dtype == np.uint8 else minmax_to_uint8(image, None, op)


# ----------------------------------------------------------------------------------------------------- CXR-Net


def _cxrnet_kernel(image) -> np.ndarray:
    values = _gray(image, "prepare_cxrnet_input")
    lo, hi = float(values.min()), float(values.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError("prepare_cxrnet_input: the image contains NaN or infinite values")
    # The authors min-max scale the pixel data to [0, 255] as floats: (x - min) / (max - min) * 255, evaluated in
    # that order. A constant image has no range: zeros here.
    scaled = values
    if hi > lo and values.dtype == np.uint8:
        # 8-bit data has 256 possible values: the same float64 operations on a table, applied by cv2.LUT (the
        # same numbers, ~30% less time for the whole preparation)
        table = (np.arange(256, dtype=np.float64) - lo) / (hi - lo) * 255.0
        scaled = cv2.LUT(values, table)
    elif hi > lo:
        scaled = values.astype(np.float64)
        np.subtract(scaled, lo, out=scaled)
        np.divide(scaled, hi - lo, out=scaled)
        np.multiply(scaled, 255.0, out=scaled)
    else:
        scaled = np.zeros(values.shape, np.float64)
    height, width = CXRNET_SIZE
    small = cv2.resize(scaled, (width, height), interpolation=cv2.INTER_LINEAR)
    return equalize_hist(cv2.convertScaleAbs(small))


def prepare_cxrnet_input(image):
    """CXR-Net's preparation of a radiograph: the ``uint8 (300, 340)`` image Module 1 and Module 2 start from.

    The authors' steps (Predict_new_patient.py; reference cxrnet.md §3): grayscale; min-max scale the (>= 8-bit)
    pixel data to [0, 255] as float64; ``cv2.resize(img, (340, 300))`` (bilinear; height 300, width 340);
    ``cv2.convertScaleAbs`` (round half to even, saturate) to uint8; global histogram equalization
    (``cv2.equalizeHist``). Module 1 then takes ``x / 255``; Module 2 standardizes with :data:`CXRNET_MEAN` and
    :data:`CXRNET_STD` (``recipe("cxrnet", module=2)``).

    Args:
        image: a 2-D array or tensor of any numeric dtype (pass full-depth data, e.g.
            ``read_image(path, native_depth=True)``, to keep the authors' precision), an ``(H, W, 3|4)`` colour
            array (converted with :func:`to_gray`), or a path / encoded bytes (read with ``native_depth=True``).
            A constant image becomes all zeros.

    Example::

        x = prepare_cxrnet_input("cxr.dcm")[None, ..., None] / 255.0     # Module 1 input
    """
    if isinstance(image, (str, os.PathLike, bytes, bytearray)):
        image = read_image(image, native_depth=True)
    if not _dispatch.is_tensor(image):
        return _cxrnet_kernel(image)
    import tensorflow as tf

    return _dispatch.run(_cxrnet_kernel, image, dtype=tf.uint8, shape=CXRNET_SIZE, name="prepare_cxrnet_input")


# ------------------------------------------------------------------------------------------------ steps, recipe


@dataclass(frozen=True)
class Step:
    """One step of a recipe.

    ``image`` maps the image; ``mask`` maps each label mask (None: masks are untouched, i.e. an intensity step).
    ``into`` (optional) is ``image`` writing its result into a given array, returning False when it cannot (then
    ``image`` runs); a recipe's last step uses it to fill a batch slot directly. Steps whose geometry depends on
    the image (a lung crop) override :meth:`apply`.
    """

    name: str
    image: Callable[[np.ndarray], np.ndarray]
    mask: Callable[[np.ndarray], np.ndarray] | None = None
    into: Callable[[np.ndarray, np.ndarray], bool] | None = None

    def apply(self, image: np.ndarray, masks: MaskList) -> tuple[np.ndarray, MaskList]:
        out = self.image(image)
        return out, masks if self.mask is None else [self.mask(m) for m in masks]


class _LungCropStep(Step):
    """COVID-CXNet's ROI block: lung map from the U-Net, dilated box, crop, bicubic resize (engineer C's code)."""

    def __init__(self, model, size: tuple[int, int]):
        super().__init__(f"lung crop with the U-Net, bicubic resize to {size[0]}x{size[1]}", image=None)
        object.__setattr__(self, "_model", model)
        object.__setattr__(self, "_size", size)

    def apply(self, image, masks):
        from cxrzoo.preprocessing.lungs import covid_cxnet_lung_mask, crop_to_lungs

        lung_map = covid_cxnet_lung_mask(image, self._model)
        crop, (y0, y1, x0, x1) = crop_to_lungs(image, lung_map, size=self._size, return_box=True)
        return crop, [resize(np.ascontiguousarray(m[y0:y1, x0:x1]), self._size, "nearest") for m in masks]


@dataclass(frozen=True)
class Recipe:
    """A named preparation: ``recipe(image) -> float32 (H, W, C)``; see :func:`recipe` for the catalogue.

    Attributes:
        name: the catalogue name.
        paper: the seed paper it reproduces.
        output_shape: ``(H, W, C)`` of the prepared image.
        steps: the :class:`Step` s, in order (``print(recipe)`` lists them).
    """

    name: str
    paper: str
    output_shape: tuple[int, int, int]
    steps: tuple[Step, ...]

    def prepare(
        self, image: np.ndarray, masks: Sequence[np.ndarray] = (), *, out: np.ndarray | None = None
    ) -> tuple[np.ndarray, MaskList]:
        """Run the steps on a NumPy image and its label masks (2-D uint8 each, the image's size).

        Returns the prepared float32 ``(H, W, C)`` image and the masks at its geometry (uint8, unchanged values).
        With ``out`` (a C-contiguous float32 array of :attr:`output_shape`, e.g. one slot of a batch) the image is
        written there and ``out`` is returned: the same values, without an intermediate array and a copy.
        """
        masks = [np.asarray(m) for m in masks]
        for m in masks:
            if m.shape[:2] != image.shape[:2]:
                raise ValueError(
                    f"recipe {self.name!r}: a mask of shape {m.shape} does not match its image of shape {image.shape}"
                )
        if out is not None and (
            out.shape != self.output_shape or out.dtype != np.float32 or not out.flags.c_contiguous
        ):
            raise ValueError(
                f"recipe {self.name!r}: out must be a C-contiguous float32 array of shape "
                f"{self.output_shape}, got {out.dtype} {out.shape}"
            )
        *steps, last = self.steps
        for step in steps:
            image, masks = step.apply(image, masks)
        if out is not None and last.into is not None and last.into(image, out):
            image, masks = out, masks if last.mask is None else [last.mask(m) for m in masks]
        else:
            image, masks = last.apply(image, masks)
        if image.shape != self.output_shape or image.dtype != np.float32:
            raise AssertionError(
                f"recipe {self.name!r} produced {image.dtype} {image.shape}, expected float32 {self.output_shape}"
            )
        if out is not None and image is not out:
            out[...] = image
            image = out
        return image, masks

    def __call__(self, image):
        """Prepare one image: a NumPy array, a tensor (inside ``tf.data`` too), a path or encoded bytes."""
        if isinstance(image, (str, os.PathLike, bytes, bytearray)):
            image = read_image(image, native_depth=True)
        if not _dispatch.is_tensor(image):
            return self.prepare(image)[0]
        import tensorflow as tf

        return _dispatch.run(
            lambda a: self.prepare(a)[0], image, dtype=tf.float32, shape=self.output_shape, name=f"recipe_{self.name}"
        )

    def __repr__(self) -> str:
        lines = [f"Recipe({self.name!r}, paper={self.paper!r}, output_shape={self.output_shape})"]
        lines += [f"  {i}. {step.name}" for i, step in enumerate(self.steps, 1)]
        return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- step makers


def _to_uint8_step() -> Step:
    return Step("grayscale uint8 (colour → ITU-R 601-2 luma; deeper data min-max scaled)", _gray_uint8)


def _resize_step(size: tuple[int, int], method: str) -> Step:
    return Step(
        f"{method} resize to {size[0]}x{size[1]} (OpenCV)",
        lambda a: resize(a, size, method),
        lambda m: resize(m, size, "nearest"),
    )


def _resize_truncate_step(size: tuple[int, int]) -> Step:
    # COVID-CXNet resizes the float32 array returned by Keras' img_to_array, then casts with astype(uint8): values
    # are truncated, not rounded. Overshoot beyond [0, 255] (which astype would wrap around) is clipped here.
    def _image(a):
        out = cv2.resize(a.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        return np.clip(out, 0, 255, out=out).astype(np.uint8)

    return Step(
        f"bicubic resize to {size[0]}x{size[1]} as float32, truncated to uint8 (authors' cast)",
        _image,
        lambda m: resize(m, size, "nearest"),
    )


def _scale_step(normalization: str = "unit") -> Step:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")

    def _arithmetic(a):
        x = np.divide(a, np.float32(255.0), dtype=np.float32)  # one pass; the same values as astype, then /
        if x.ndim == 2:
            x = x[..., None]
        if normalization == "imagenet":
            x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
        return x

    # For uint8 input the whole step is a table of the 256 levels (one column per channel for ImageNet statistics)
    # made by the arithmetic itself, so bit-identical, and applied by cv2.LUT (with ImageNet statistics ~3x faster
    # than the arithmetic; for x / 255 alone about as fast).
    table = _arithmetic(np.arange(256, dtype=np.uint8).reshape(256, 1))  # (256, 1, 1) or (256, 1, 3)
    channels = table.shape[-1]

    def _image(a):
        if a.dtype == np.uint8:
            out = np.empty(a.shape if a.ndim == 3 else a.shape + (1,), np.float32)
            if _into(a, out):
                return out
        return _arithmetic(a)

    def _into(a, out):
        if a.dtype != np.uint8 or out.shape != (a.shape if a.ndim == 3 else a.shape + (1,)):
            return False
        if channels == 1 and out.shape[-1] == 1:
            dst, src, lut = out.reshape(out.shape[:2]), a.reshape(a.shape[:2]), table[..., 0]
        elif channels == 1:  # one table for every channel
            dst, src, lut = out, a, table[..., 0]
        elif channels == out.shape[-1]:
            dst, src, lut = out, a, table
        else:
            return False
        # OpenCV writes into dst when its shape and type fit, which they do here; checked, not assumed.
        return cv2.LUT(src, lut, dst=dst) is dst

    label = "x / 255" if normalization == "unit" else "x / 255, then ImageNet mean/std per channel"
    return Step(f"{label} → float32", _image, into=_into)


def _check_size(size, name: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size!r}")
    return size


def _replicate3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1)


# -------------------------------------------------------------------------------------------------- the recipes


def _recipe_cxrnet(module: int = 1) -> Recipe:
    if module not in (1, 2):
        raise ValueError(f"recipe 'cxrnet': module must be 1 or 2, got {module!r}")
    steps = [
        Step(
            "CXR-Net preparation: min-max to [0, 255] (float64), bilinear resize to 300x340, "
            "convertScaleAbs, equalizeHist",
            _cxrnet_kernel,
            lambda m: resize(m, CXRNET_SIZE, "nearest"),
        )
    ]
    if module == 1:
        steps.append(_scale_step())
    else:
        steps.append(
            Step(
                f"(x - {CXRNET_MEAN}) / {CXRNET_STD} → float32 (Module 2 X)",
                lambda a: ((a.astype(np.float64) - CXRNET_MEAN) / CXRNET_STD).astype(np.float32)[..., None],
            )
        )
    return Recipe("cxrnet", "cxrnet", CXRNET_SIZE + (1,), tuple(steps))


def _recipe_covid_cxnet(
    channel_order: str = "beasf_clahe_original", lung_model=None, template=None, size=(320, 320)
) -> Recipe:
    size = _check_size(size, "recipe 'covid_cxnet'")
    if channel_order not in ("beasf_clahe_original", "original_beasf_clahe"):
        raise ValueError(
            "recipe 'covid_cxnet': channel_order must be 'beasf_clahe_original' (notebooks) or "
            f"'original_beasf_clahe' (scripts), got {channel_order!r}"
        )
    steps = [_to_uint8_step(), _resize_truncate_step(size)]
    if lung_model is not None:
        steps.append(_LungCropStep(lung_model, size))
    if template is not None:
        template = _gray_uint8(np.asarray(template), "recipe 'covid_cxnet' template")
        steps.append(Step("histogram matching to the template image", lambda a: match_histogram(a, template)))
    steps.append(
        Step(
            f"three channels {channel_order} (BEASF gamma 1.5, CLAHE 2.0 / 8x8)",
            lambda a: three_channel(a, channel_order),
        )
    )
    steps.append(_scale_step())
    return Recipe("covid_cxnet", "covid_cxnet", size + (3,), tuple(steps))


def _recipe_covid_cxnet_base(input_shape=(320, 320, 3)) -> Recipe:
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(f"recipe 'covid_cxnet_base': input_shape must be (H, W, 1) or (H, W, 3), got {input_shape}")
    size = _check_size(input_shape[:2], "recipe 'covid_cxnet_base'")
    steps = [_to_uint8_step(), _resize_truncate_step(size)]
    if input_shape[-1] == 3:
        steps.append(
            Step(
                "three channels original_beasf_clahe (BEASF gamma 1.5, CLAHE 2.0 / 8x8)",
                lambda a: three_channel(a, "original_beasf_clahe"),
            )
        )
    steps.append(_scale_step())
    return Recipe("covid_cxnet_base", "covid_cxnet", size + (input_shape[-1],), tuple(steps))


def _recipe_covid_xnet(
    reference=None,
    bone_suppression: bool = True,
    clip_limit: float = 2.0,
    tile_grid_size=(8, 8),
    size=(128, 128),
    bone_size=None,
) -> Recipe:
    size = _check_size(size, "recipe 'covid_xnet'")
    steps = [_to_uint8_step()]
    if reference is not None:
        reference = _gray_uint8(np.asarray(reference), "recipe 'covid_xnet' reference")
        steps.append(Step("histogram matching to the reference image", lambda a: match_histogram(a, reference)))
    if bone_suppression:

        def _suppress(a):
            from cxrzoo.preprocessing.bones import suppress_bones

            return suppress_bones(a, size=bone_size)

        steps.append(Step("rib-shadow suppression (ML-BoneSuppression autoencoder)", _suppress))
    steps.append(
        Step(f"CLAHE clip {clip_limit}, tiles {tuple(tile_grid_size)}", lambda a: clahe(a, clip_limit, tile_grid_size))
    )
    steps.append(_resize_step(size, "area"))
    steps.append(_scale_step())
    return Recipe("covid_xnet", "covid_xnet", size + (1,), tuple(steps))


def _recipe_tahir_segmentation(size=(256, 256), normalization: str = "imagenet") -> Recipe:
    size = _check_size(size, "recipe 'tahir_segmentation'")
    steps = (
        _to_uint8_step(),
        _resize_step(size, "bilinear"),
        Step("gray replicated to 3 channels", _replicate3),
        _scale_step(normalization),
    )
    return Recipe("tahir_segmentation", "infection_detector", size + (3,), steps)


TAHIR_SCHEMES = ("original", "clahe", "complement", "original_clahe_complement")


def _recipe_tahir_classifier(
    scheme: str = "original_clahe_complement", size=(256, 256), normalization: str = "imagenet"
) -> Recipe:
    size = _check_size(size, "recipe 'tahir_classifier'")
    if scheme not in TAHIR_SCHEMES:
        raise ValueError(f"recipe 'tahir_classifier': scheme must be one of {TAHIR_SCHEMES}, got {scheme!r}")
    single = {"original": lambda a: a, "clahe": lambda a: clahe(a), "complement": complement}
    if scheme == "original_clahe_complement":
        channels = Step(
            "three channels original_clahe_complement (CLAHE 2.0 / 8x8)", lambda a: three_channel(a, scheme)
        )
    else:
        channels = Step(f"{scheme}, replicated to 3 channels", lambda a: _replicate3(single[scheme](a)))
    steps = (_to_uint8_step(), _resize_step(size, "bilinear"), channels, _scale_step(normalization))
    return Recipe("tahir_classifier", "infection_detector", size + (3,), steps)


def _recipe_screening_baselines(equalize: bool = False, size: int = 224) -> Recipe:
    size = int(size)
    if size < 1:
        raise ValueError(f"recipe 'screening_baselines': size must be positive, got {size}")
    steps = [
        _to_uint8_step(),
        Step("crop the top 8% of rows", lambda a: crop_top(a, 0.08), lambda m: crop_top(m, 0.08)),
        Step(
            "centre crop to the largest square", lambda a: center_crop(a, "square"), lambda m: center_crop(m, "square")
        ),
        _resize_step((224, 224), "bicubic"),
    ]
    if equalize:
        steps.append(Step("global histogram equalization", equalize_hist))
    if size != 224:  # InceptionV3: the paper upsamples the 224 images bilinearly to 299
        steps.append(_resize_step((size, size), "bilinear"))
    steps.append(_scale_step())
    return Recipe("screening_baselines", "screening", (size, size, 1), tuple(steps))


_RECIPES: dict[str, Callable[..., Recipe]] = {
    "cxrnet": _recipe_cxrnet,
    "covid_cxnet": _recipe_covid_cxnet,
    "covid_cxnet_base": _recipe_covid_cxnet_base,
    "covid_xnet": _recipe_covid_xnet,
    "tahir_segmentation": _recipe_tahir_segmentation,
    "tahir_classifier": _recipe_tahir_classifier,
    "screening_baselines": _recipe_screening_baselines,
}


def list_recipes() -> list[str]:
    """The names :func:`recipe` accepts."""
    return sorted(_RECIPES)


def recipe(name: str, **options) -> Recipe:
    """The preparation a paper's model was trained with, by name.

    Names and options (defaults first; docs/preprocessing.md marks which details the papers state):

    - ``"cxrnet"`` (``module=1|2``): :func:`prepare_cxrnet_input`, then ``x / 255`` (Module 1) or the V7
      standardization (Module 2's X). Output (300, 340, 1).
    - ``"covid_cxnet"`` (``channel_order="beasf_clahe_original"|"original_beasf_clahe"``, ``lung_model=None``,
      ``template=None``, ``size=(320, 320)``): gray, bicubic resize (float, truncated), optional U-Net lung crop
      (needs the lung U-Net), optional histogram matching to a template image (multiclass and hierarchical
      models), [BEASF(1.5), CLAHE(2.0, 8x8), original] / 255. Output (320, 320, 3).
    - ``"covid_cxnet_base"`` (``input_shape=(320, 320, 3)``): the base CNN's input; 3 channels are
      [original, BEASF, CLAHE] / 255, 1 channel is the resized image / 255 (tags: v1.0 400x400x1, v_free
      300x300x3).
    - ``"covid_xnet"`` (``reference=None``, ``bone_suppression=True``, ``clip_limit=2.0``,
      ``tile_grid_size=(8, 8)``, ``size=(128, 128)``, ``bone_size=None``): gray, histogram matching to
      ``reference`` (skipped when None: the paper's reference image is unknown), rib suppression
      (:func:`cxrzoo.preprocessing.suppress_bones`), CLAHE, area resize to 128x128, / 255. Output (128, 128, 1).
    - ``"tahir_segmentation"`` (``size=(256, 256)``, ``normalization="imagenet"|"unit"``): gray, bilinear resize,
      3 identical channels, / 255 and ImageNet mean/std. Output (256, 256, 3).
    - ``"tahir_classifier"`` (``scheme="original_clahe_complement"|"original"|"clahe"|"complement"``,
      ``size=(256, 256)``, ``normalization="imagenet"|"unit"``): the thesis' four input schemes. Output (256, 256, 3).
    - ``"screening_baselines"`` (``equalize=False``, ``size=224``): gray, crop the top 8%, centre square crop,
      bicubic 224, optional global histogram equalization, bilinear upsampling when ``size != 224`` (299 for
      InceptionV3), / 255. Output (size, size, 1).
    """
    if name not in _RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {list_recipes()}")
    try:
        return _RECIPES[name](**options)
    except TypeError as err:
        raise TypeError(f"recipe {name!r}: {err}") from None
