"""CXR-Net's specs: Module 1 (Res-CR-Net), the Module 2 members and ensemble, and the end-to-end CXR-Net.

Each published weights file gets one :class:`~cxrzoo.spec.ModelSpec` (``arch.tag``), each architecture one for
random initialisation (``arch``). The end-to-end ``cxrnet.hfhs_v7`` combines the two files the authors' inference
ran: Module 1 trained on V7 and the six-member Module 2 ensemble.
"""

from __future__ import annotations

from cxrzoo.models.cxrnet.preprocessing import CXRNET_MEAN, CXRNET_SIZE, CXRNET_STD
from cxrzoo.spec import InputSpec, ModelSpec, OutputSpec, register_spec

LABELS = ("covid", "non_covid")
LUNG_CHANNELS = ("lungs", "non_lungs")
_SIZE = CXRNET_SIZE + (1,)
_PREPARED = "CXR-Net preparation (min-max to 8 bits, bilinear 300×340, global histogram equalization)"


def _module1(name: str, weights: tuple[str, ...] = (), description: str = "") -> ModelSpec:
    return ModelSpec(
        name=name,
        arch="res_cr_net",
        paper="cxrnet",
        task="segmentation",
        input=InputSpec(
            _SIZE, (0.0, 1.0), trained_size=CXRNET_SIZE if weights else None, description=f"{_PREPARED}, then x / 255"
        ),
        output=OutputSpec("mask", LUNG_CHANNELS, "softmax", threshold=0.5),
        recipe="cxrnet",
        recipe_options={"module": 1},
        builder_kwargs={"input_shape": _SIZE, **({"weights": weights[0]} if weights else {})},
        weights=weights,
        cam_layer="head_conv",
        parameters=59_941,
        training_recipe="cxrnet_module1",
        description=description,
    )


def _classifier_output(key: str | None) -> OutputSpec:
    # the end-to-end model returns a dict (probabilities, logits, maps, masks); Module 2 alone returns a tensor
    return OutputSpec("probabilities", LABELS, "softmax", key=key, positive="covid", threshold=0.5)


register_spec(_module1("res_cr_net", description="Res-CR-Net lung segmenter (CXR-Net Module 1), random init"))
register_spec(
    _module1(
        "res_cr_net.v7_lungs",
        ("res_cr_net.v7_lungs",),
        "Module 1 trained on V7 COVID-19 CXRs: lungs including the region behind the heart",
    ),
    default=True,
)
register_spec(
    _module1(
        "res_cr_net.jms_lungs",
        ("res_cr_net.jms_lungs",),
        "Module 1 trained on JSRT + Montgomery + Shenzhen: lungs excluding the heart",
    )
)

_MEMBER_INPUT = InputSpec(
    (75, 85, 50),
    None,
    description="49 scattering channels (J=2, L=6) of Module 2's standardized "
    "image and its 4×4-pooled lung mask; build_cxrnet_classifier puts the WST in front",
)
register_spec(
    ModelSpec(
        name="cxrnet_member",
        arch="cxrnet_member",
        paper="cxrnet",
        task="classification",
        input=_MEMBER_INPUT,
        output=OutputSpec("probabilities", LABELS, "softmax", positive="covid", threshold=0.5),
        recipe=None,
        cam_layer="masked_map",
        parameters=20_467,
        training_recipe="cxrnet_module2",
        description="one Module 2 member (cross-attention + residual blocks), random init",
    )
)
for _k in range(6):
    register_spec(
        ModelSpec(
            name=f"cxrnet_member.hfhs_fold{_k}",
            arch="cxrnet_member",
            paper="cxrnet",
            task="classification",
            input=_MEMBER_INPUT,
            output=OutputSpec("probabilities", LABELS, "softmax", positive="covid", threshold=0.5),
            recipe=None,
            builder_kwargs={"weights": f"cxrnet_member.hfhs_fold{_k}"},
            weights=(f"cxrnet_member.hfhs_fold{_k}",),
            cam_layer="masked_map",
            parameters=20_467,
            training_recipe="cxrnet_module2",
            description=f"Module 2 member of cross-validation fold {_k} (HFHS data)",
        ),
        default=_k == 0,
    )
del _k

_X_RANGE = ((0.0 - CXRNET_MEAN) / CXRNET_STD, (255.0 - CXRNET_MEAN) / CXRNET_STD)
_X_INPUT = InputSpec(
    _SIZE,
    _X_RANGE,
    trained_size=CXRNET_SIZE,
    description=f"inputs [X, M]: X = ({_PREPARED} - {CXRNET_MEAN:.4f}) / {CXRNET_STD:.4f}; M = "
    "Module 1's lung probability, gated (build_cxrnet does all of it in-graph)",
)
for _name, _weights in (
    ("cxrnet_classifier", ()),
    ("cxrnet_classifier.hfhs_ensemble6", ("cxrnet_classifier.hfhs_ensemble6",)),
):
    register_spec(
        ModelSpec(
            name=_name,
            arch="cxrnet_classifier",
            paper="cxrnet",
            task="classification",
            input=_X_INPUT,
            output=_classifier_output(None),
            recipe="cxrnet",
            recipe_options={"module": 2},
            builder_kwargs={"weights": _weights[0] if _weights else None},
            weights=_weights,
            cam_layer="feature_map",
            parameters=122_802,
            training_recipe="cxrnet_module2",
            description="CXR-Net Module 2: WST + six parallel members, maps averaged",
        ),
        default=bool(_weights),
    )

_END_TO_END_INPUT = InputSpec(
    _SIZE,
    (0.0, 255.0),
    trained_size=CXRNET_SIZE,
    description=f"{_PREPARED}, as float32 0..255 (cxrzoo.prepare_cxrnet_input)",
)
_PUBLISHED = ("cxrnet_classifier.hfhs_ensemble6", "res_cr_net.v7_lungs")  # the files the authors' inference ran
for _name, _weights, _description in (
    ("cxrnet", (), "end-to-end CXR-Net (Module 1 + gate + Module 2 in one model), random init"),
    (
        "cxrnet.hfhs_v7",
        _PUBLISHED,
        "the authors' CXR-Net: Module 1 trained on V7 and the six-member Module 2 ensemble (HFHS data)",
    ),
):
    register_spec(
        ModelSpec(
            name=_name,
            arch="cxrnet",
            paper="cxrnet",
            task="classification",
            input=_END_TO_END_INPUT,
            output=_classifier_output("probabilities"),
            recipe="cxrnet",
            recipe_options={"module": "end_to_end"},
            builder_kwargs=dict(zip(("weights", "segmenter_weights"), _weights or (None, None))),
            weights=_weights,
            cam_layer="feature_map",
            parameters=182_743,
            description=_description,
        ),
        default=bool(_weights),
    )
del _name, _weights, _description
