"""Preparation recipes: a paper's preparation of a chest X-ray as a named, inspectable :class:`Recipe`.

A recipe turns one grayscale image (any size, 8-bit or deeper) into the float32 ``(H, W, C)`` array its model was
trained on, and moves label masks through the same geometry (nearest neighbour, so labels stay labels). Recipes run
on NumPy arrays, and on tensors inside ``tf.data`` (one ``tf.numpy_function`` per image, so the numbers are the
same both ways). This module holds the machinery (steps, recipes, the catalogue); each paper's folder registers its
recipes (``cxrzoo/models/<paper>/preprocessing.py``). docs/preprocessing.md says, recipe by recipe, which details
the papers state and which are choices made here.

Example::

    from cxrzoo.preprocessing import read_image, recipe
    prep = recipe(weights="res_cr_net.v7_lungs")    # what those weights were trained on
    x = prep(read_image("cxr.png"))                 # float32 (300, 340, 1) in [0, 1]
    print(prep)                             # the steps, in order
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from cxrzoo.catalog import Catalog
from cxrzoo.preprocessing import _dispatch
from cxrzoo.preprocessing.enhance import to_gray
from cxrzoo.preprocessing.geometry import resize
from cxrzoo.preprocessing.io import minmax_to_uint8, read_image
from cxrzoo.spec import SPECS, ModelSpec

if TYPE_CHECKING:
    import tensorflow as tf

#: ImageNet statistics on the [0, 1] scale (torchvision's), used by the thesis recipes.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("unit", "imagenet")

MaskList = list  # of 2-D uint8 arrays


def gray(image: np.ndarray, op: str) -> np.ndarray:
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


def gray_uint8(image: np.ndarray, op: str = "recipe") -> np.ndarray:
    """:func:`_gray`, then deeper data min-max scaled to uint8 (rounded), like :func:`read_image`."""
    image = gray(image, op)
    return image if image.dtype == np.uint8 else minmax_to_uint8(image, None, op)


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


@dataclass(frozen=True)
class Recipe:
    """A named preparation: ``recipe(image) -> float32 (H, W, C)``; see :func:`recipe` for the catalogue.

    Attributes:
        name: the catalogue name.
        paper: the paper it reproduces.
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

    def __call__(self, image: np.ndarray | tf.Tensor | str | os.PathLike | bytes | bytearray) -> np.ndarray | tf.Tensor:
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


def to_uint8_step() -> Step:
    return Step("grayscale uint8 (colour → ITU-R 601-2 luma; deeper data min-max scaled)", gray_uint8)


def resize_step(size: tuple[int, int], method: str) -> Step:
    return Step(
        f"{method} resize to {size[0]}x{size[1]} (OpenCV)",
        lambda a: resize(a, size, method),
        lambda m: resize(m, size, "nearest"),
    )


def resize_truncate_step(size: tuple[int, int]) -> Step:
    # COVID-CXNet resizes the float32 array returned by Keras' img_to_array, then casts with astype(uint8): values
    # are truncated, not rounded. Overshoot beyond [0, 255] (which astype would wrap around) is clipped here.
    def _image(a: np.ndarray) -> np.ndarray:
        out = cv2.resize(a.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        return np.clip(out, 0, 255, out=out).astype(np.uint8)

    return Step(
        f"bicubic resize to {size[0]}x{size[1]} as float32, truncated to uint8 (authors' cast)",
        _image,
        lambda m: resize(m, size, "nearest"),
    )


def scale_step(normalization: str = "unit") -> Step:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")

    def _arithmetic(a: np.ndarray) -> np.ndarray:
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

    def _image(a: np.ndarray) -> np.ndarray:
        if a.dtype == np.uint8:
            out = np.empty(a.shape if a.ndim == 3 else a.shape + (1,), np.float32)
            if _into(a, out):
                return out
        return _arithmetic(a)

    def _into(a: np.ndarray, out: np.ndarray) -> bool:
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


def check_size(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name}: size must be a positive int or (height, width), got {size!r}")
    return size


def replicate3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1)


# ------------------------------------------------------------------------------------------------- the catalogue

RECIPES: Catalog[Callable[..., Recipe]] = Catalog("recipe")


def register_recipe(
    name: str, factory: Callable[..., Recipe], *, aliases: tuple[str, ...] = ()
) -> Callable[..., Recipe]:
    """Registers ``factory(**options) -> Recipe`` as the recipe ``name`` (a paper's folder does this)."""
    return RECIPES.register(name, factory, aliases=aliases)


def list_recipes() -> list[str]:
    """The names :func:`recipe` accepts."""
    return RECIPES.names()


def recipe(name: str | None = None, *, weights: str | ModelSpec | None = None, **options: Any) -> Recipe:
    """A preparation by name, or the one a published model (or an architecture) was trained with.

    ``recipe(weights="res_cr_net.v7_lungs")`` (any spec name, ``"arch"`` or ``"arch.tag"``, or a model's
    :class:`~cxrzoo.spec.ModelSpec`, e.g. ``cxrzoo.model_spec(model)``) is the recipe and
    options recorded in that model's spec (:func:`cxrzoo.model_spec`), so the input contract cannot drift from the
    weights; ``options`` override single values. ``recipe(name, **options)`` builds a recipe directly;
    :func:`list_recipes` gives the names and each paper's model card its options.

    Example::

        prep = recipe(weights="covid_cxnet_base.v_free")
        prep.output_shape           # (300, 300, 3)
    """
    if weights is not None:
        spec = weights if isinstance(weights, ModelSpec) else SPECS.get(weights)
        if spec.recipe is None:
            raise ValueError(f"model {spec.name!r} has no image recipe: its input is {spec.input.description}")
        if name is not None and RECIPES.canonical(name) != RECIPES.canonical(spec.recipe):
            raise ValueError(
                f"recipe {name!r} is not the one {spec.name!r} was trained with ({spec.recipe!r}); "
                f"call recipe(weights={spec.name!r}) alone"
            )
        name, options = spec.recipe, {**spec.recipe_options, **options}
    if name is None:
        raise TypeError("recipe() needs a recipe name or weights=TAG, e.g. recipe(weights='res_cr_net.v7_lungs')")
    factory = RECIPES.get(name)
    try:
        return factory(**options)
    except TypeError as err:
        raise TypeError(f"recipe {name!r}: {err}") from None
