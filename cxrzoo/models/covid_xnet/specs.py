"""COVID-XNet's specs: the CNN (no weights published) and the bone-suppression autoencoder (published)."""

from __future__ import annotations

from cxrzoo.models.covid_xnet.covid_xnet import CLASS_NAMES
from cxrzoo.spec import InputSpec, ModelSpec, OutputSpec, register_spec

register_spec(
    ModelSpec(
        name="covid_xnet",
        arch="covid_xnet",
        paper="covid_xnet",
        task="classification",
        input=InputSpec(
            (128, 128, 1),
            (0.0, 1.0),
            description="histogram-matched, bone-suppressed, CLAHE, area resize to 128×128, / 255",
        ),
        output=OutputSpec("probabilities", CLASS_NAMES, "softmax", positive="covid", threshold=0.5),
        recipe="covid_xnet",
        cam_layer="conv5_act",
        parameters=434_050,
        training_recipe="covid_xnet",
        description="COVID-XNet CNN with a GAP head (filter counts not stated in the paper: documented defaults)",
    )
)

_BONES_INPUT = "8-bit gray / 255 with inverted polarity (lungs bright), any size (the author ran 1024×1024)"
for _name, _weights in (("bone_suppression", ()), ("bone_suppression.jsrt_v2", ("bone_suppression.jsrt_v2",))):
    register_spec(
        ModelSpec(
            name=_name,
            arch="bone_suppression",
            paper="covid_xnet",
            task="image",
            input=InputSpec((None, None, 1), (0.0, 1.0), description=_BONES_INPUT),
            output=OutputSpec("image", ("bone_suppressed_image",), "relu"),
            recipe=None,
            builder_kwargs={"weights": _weights[0]} if _weights else {},
            weights=_weights,
            parameters=64_400,
            description="ML-BoneSuppression autoencoder (tied weights), used by COVID-XNet's preprocessing",
        ),
        default=bool(_weights),
    )
del _name, _weights
