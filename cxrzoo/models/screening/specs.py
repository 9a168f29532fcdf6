"""The screening baselines' specs: one per architecture (random init; the paper published no weights)."""

from __future__ import annotations

from cxrzoo.spec import InputSpec, ModelSpec, OutputSpec, register_spec

# name: (input size, CAM layer, parameters (Keras' count_params) at the paper's configuration: 1 gray channel,
# one logit)
_ARCHS = {
    "alexnet": (224, "conv5", 56_992_449),
    "vgg16": (224, "block5_conv3", 134_263_489),
    "resnet50": (224, "conv5_block3_out", 23_556_929),
    "densenet121": (224, "relu", 7_032_257),
    "inception_v3": (299, "mixed_7c", 24_381_730),
}
for _arch, (_size, _cam, _parameters) in _ARCHS.items():
    register_spec(
        ModelSpec(
            name=_arch,
            arch=_arch,
            paper="screening",
            task="classification",
            input=InputSpec(
                (_size, _size, 1),
                (0.0, 1.0),
                description="gray, top 8% cropped, centre square, bicubic 224"
                + (", bilinear 299" if _size == 299 else "")
                + ", / 255",
            ),
            output=OutputSpec("logits", ("covid",), None, positive="covid", threshold=0.0),
            recipe="screening_baselines",
            recipe_options={"size": _size},
            cam_layer=_cam,
            parameters=_parameters,
            training_recipe="screening",
            description=f"{_arch} baseline on grayscale CXRs, one logit (COVID-19 vs not)",
        )
    )
del _arch, _size, _cam, _parameters
