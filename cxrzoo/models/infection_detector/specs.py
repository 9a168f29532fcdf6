"""The infection detector's specs: one per segmenter (decoder × encoder), per classifier backbone and SqueezeNet.

The thesis published no weights, so these specs describe random initialisation at the thesis' configuration:
256×256 inputs, 3 identical gray channels with ImageNet statistics, one logit per pixel for the segmenters (the
thesis trains lungs and infection as separate binary models), and 3 classes for the classifiers.
"""

from __future__ import annotations

from cxrzoo.models.infection_detector.detector import TAHIR_LABELS
from cxrzoo.models.infection_detector.segmentation import DECODERS
from cxrzoo.nn.backbones import CLASSIFIER_CAM_LAYER, ENCODERS
from cxrzoo.preprocessing.recipes import IMAGENET_MEAN, IMAGENET_STD
from cxrzoo.spec import InputSpec, ModelSpec, OutputSpec, register_spec

# The ImageNet-normalized range of [0, 1] data, over the three channels.
_RANGE = (
    min((0.0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),
    max((1.0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)),
)
_SEG_INPUT = InputSpec(
    (256, 256, 3), _RANGE, description="gray, bilinear 256×256, 3 identical channels, / 255, ImageNet mean/std"
)
_CLS_INPUT = InputSpec(
    (256, 256, 3),
    _RANGE,
    description="lung-segmented gray, bilinear 256×256, [original, CLAHE, complement], / 255, ImageNet mean/std",
)
_SEG_CAM = {"unet": "decoder_block5_2_relu", "unet_plus_plus": "decoder_x_0_4_2_relu", "fpn": "decoder_merge"}

# Parameters (Keras' count_params, batch-norm statistics included) at the thesis' configuration; the trainable
# counts equal segmentation_models_pytorch's (docs/models/infection_detector.md).
SEGMENTER_PARAMETERS = {
    "fpn_densenet121": 9_383_361,
    "fpn_densenet161": 29_717_729,
    "fpn_inceptionv4": 43_633_761,
    "fpn_resnet18": 13_056_833,
    "fpn_resnet50": 26_169_153,
    "unet_densenet121": 13_693_265,
    "unet_densenet161": 38_960_241,
    "unet_inceptionv4": 48_857_073,
    "unet_plus_plus_densenet121": 30_162_769,
    "unet_plus_plus_densenet161": 79_285_617,
    "unet_plus_plus_inceptionv4": 59_426_289,
    "unet_plus_plus_resnet18": 15_983_825,
    "unet_plus_plus_resnet50": 49_045_713,
    "unet_resnet18": 14_339_793,
    "unet_resnet50": 32_576_209,
}
CLASSIFIER_PARAMETERS = {
    "cxr_classifier_densenet121": 7_040_579,
    "cxr_classifier_densenet161": 26_698_563,
    "cxr_classifier_inceptionv4": 41_210_595,
    "cxr_classifier_resnet18": 11_187_651,
    "cxr_classifier_resnet50": 23_567_299,
    "squeezenet": 736_963,
}

for _decoder in DECODERS:
    for _encoder in ENCODERS:
        _arch = f"{_decoder}_{_encoder}"
        register_spec(
            ModelSpec(
                name=_arch,
                arch=_arch,
                paper="infection_detector",
                task="segmentation",
                input=_SEG_INPUT,
                output=OutputSpec("mask", ("foreground",), None, threshold=0.0),
                recipe="infection_detector_segmentation",
                cam_layer=_SEG_CAM[_decoder],
                parameters=SEGMENTER_PARAMETERS[_arch],
                training_recipe="infection_detector_segmentation",
                description=f"{_decoder} over {_encoder}: a lung or infection segmenter (one logit per pixel)",
            )
        )
for _encoder in ENCODERS:
    _arch = f"cxr_classifier_{_encoder}"
    register_spec(
        ModelSpec(
            name=_arch,
            arch=_arch,
            paper="infection_detector",
            task="classification",
            input=_CLS_INPUT,
            output=OutputSpec("probabilities", TAHIR_LABELS, "softmax", positive="covid19"),
            recipe="infection_detector_classifier",
            cam_layer=CLASSIFIER_CAM_LAYER[_encoder],
            parameters=CLASSIFIER_PARAMETERS[_arch],
            training_recipe="infection_detector_classifier",
            description=f"{_encoder} + one linear layer: the thesis' 3-class classifier",
        )
    )
register_spec(
    ModelSpec(
        name="squeezenet",
        arch="squeezenet",
        paper="infection_detector",
        task="classification",
        input=_CLS_INPUT,
        output=OutputSpec("probabilities", TAHIR_LABELS, "softmax", positive="covid19"),
        recipe="infection_detector_classifier",
        cam_layer="fire9_concat",
        parameters=CLASSIFIER_PARAMETERS["squeezenet"],
        training_recipe="infection_detector_classifier",
        description="SqueezeNet 1.0, 3 classes",
    )
)
del _decoder, _encoder, _arch
