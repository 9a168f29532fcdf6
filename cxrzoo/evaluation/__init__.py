"""External validation: results tables against labels and reference masks (``cxrzoo evaluate``).

Classification: ROC AUC with DeLong's interval (clustered by patient), sensitivity, specificity, PPV, NPV and F1
at the paper's operating point and at a threshold chosen on the data (Youden or a target sensitivity; chosen by
patient-grouped cross-validation or on a calibration split, and reported only on cases it was not chosen on),
bootstrap intervals, calibration (Brier, ECE, reliability diagram). Segmentation: Dice, IoU and HD95 per image
and summarized. See docs/evaluate.md.

Example::

    from cxrzoo.evaluation import evaluate, evaluate_classification
    ev = evaluate("out/predictions.csv", labels="labels.csv", patient_column="patient")
    ev.save("evaluation/")                                   # report.md, metrics.json, figures
    evaluate_classification([0, 1, 1, 0, 1, 0], [0.1, 0.8, 0.6, 0.4, 0.3, 0.2], threshold=0.5, folds=2)["auc"]
"""

from cxrzoo.evaluation.classification import calibration_split, cross_validated_calls, evaluate_classification
from cxrzoo.evaluation.runner import Evaluation, check_output_folder, evaluate
from cxrzoo.evaluation.segmentation import evaluate_segmentation, mask_files, read_mask
from cxrzoo.evaluation.tables import Table, join_rows, read_table

__all__ = [
    "Evaluation",
    "Table",
    "calibration_split",
    "check_output_folder",
    "cross_validated_calls",
    "evaluate",
    "evaluate_classification",
    "evaluate_segmentation",
    "join_rows",
    "mask_files",
    "read_mask",
    "read_table",
]
