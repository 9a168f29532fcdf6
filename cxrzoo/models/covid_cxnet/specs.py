"""COVID-CXNet's specs: the DenseNet-121 classifier, the base model (two published versions), the lung U-Net."""

from __future__ import annotations

from cxrzoo.spec import InputSpec, ModelSpec, OutputSpec, register_spec

_BINARY = OutputSpec("probabilities", ("covid",), "sigmoid", positive="covid", threshold=0.5)
_UNIT = "8-bit values / 255"

for _name, _weights, _obtainable in (
    ("covid_cxnet", (), True),
    ("covid_cxnet.chexnet_init", ("covid_cxnet.chexnet_init",), False),
):
    register_spec(
        ModelSpec(
            name=_name,
            arch="covid_cxnet",
            paper="covid_cxnet",
            task="classification",
            input=InputSpec((320, 320, 3), (0.0, 1.0), description=f"[BEASF, CLAHE, original] channels, {_UNIT}"),
            output=_BINARY,
            recipe="covid_cxnet",
            builder_kwargs={"backbone_weights": _weights[0]} if _weights else {},
            weights=_weights,
            cam_layer="relu",
            parameters=7_047_765,
            training_recipe="covid_cxnet",
            obtainable=_obtainable,
            description="COVID-CXNet (DenseNet-121 + Dense(10) + Dense(1)); the final weights were never published"
            + ("; this tag initialises the backbone from CheXNet (published, not obtainable here)" if _weights else ""),
        )
    )

_BASE = {
    "covid_cxnet_base": ((320, 320, 3), (), "the base CNN, random init (320×320×3)"),
    "covid_cxnet_base.v1_0": (
        (400, 400, 1),
        ("covid_cxnet_base.v1_0",),
        "the authors' base model v1.0: 400×400 gray / 255",
    ),
    "covid_cxnet_base.v_free": (
        (300, 300, 3),
        ("covid_cxnet_base.v_free",),
        "the authors' base model 'v_free': 300×300 [original, BEASF, CLAHE] / 255",
    ),
}
_BASE_PARAMETERS = {(320, 320, 3): 60_035, (400, 400, 1): 76_675, (300, 300, 3): 60_035}
for _name, (_shape, _weights, _description) in _BASE.items():
    register_spec(
        ModelSpec(
            name=_name,
            arch="covid_cxnet_base",
            paper="covid_cxnet",
            task="classification",
            input=InputSpec(
                _shape,
                (0.0, 1.0),
                trained_size=_shape[:2] if _weights else None,
                description=("[original, BEASF, CLAHE] channels, " if _shape[-1] == 3 else "gray, ") + _UNIT,
            ),
            output=_BINARY,
            recipe="covid_cxnet_base",
            recipe_options={"input_shape": _shape},
            builder_kwargs={"input_shape": _shape, **({"weights": _weights[0]} if _weights else {})},
            weights=_weights,
            cam_layer="conv_layer5",
            parameters=_BASE_PARAMETERS[_shape],
            training_recipe="covid_cxnet_base",
            description=_description,
        ),
        default=_name == "covid_cxnet_base.v1_0",
    )

for _name, _weights in (
    ("covid_cxnet_lung_unet", ()),
    ("covid_cxnet_lung_unet.montgomery_shenzhen", ("covid_cxnet_lung_unet.montgomery_shenzhen",)),
):
    register_spec(
        ModelSpec(
            name=_name,
            arch="covid_cxnet_lung_unet",
            paper="covid_cxnet",
            task="segmentation",
            input=InputSpec(
                (320, 320, 1),
                (0.0, 255.0),
                trained_size=(320, 320) if _weights else None,
                description="8-bit image after local histogram equalization (disk 40), raw 0..255 "
                "(cxrzoo.models.covid_cxnet.covid_cxnet_lung_mask)",
            ),
            output=OutputSpec("mask", ("lungs",), "sigmoid", threshold=0.5),
            recipe=None,
            builder_kwargs={"weights": _weights[0]} if _weights else {},
            weights=_weights,
            cam_layer="bottleneck_conv2",
            parameters=7_759_521,
            training_recipe="covid_cxnet_unet",
            obtainable=not _weights,
            description="COVID-CXNet's lung U-Net (published weights not obtainable here)",
        )
    )
del _name, _weights
