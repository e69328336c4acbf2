# Bundled with nlptransfer: scikit-learn's `classification_report` as an evaluate metric module, offline.
# There is no canonical Hub module of this name; this one follows the Hub conventions (inputs, a result
# keyed by the module name) and returns the report as a dict (scikit-learn's `output_dict=True` layout).
#   evaluate.load("<this file>")  /  evaluate.load("<this file>", "multilabel")
"""Classification report metric (bundled, offline)."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import classification_report

_DESCRIPTION = """
Per-class precision, recall, F1 and support, plus their averages, as computed by scikit-learn's
`classification_report(output_dict=True)`. Row keys are the class names (`target_names`, else the label ids as
strings) followed by "accuracy" (or "micro avg" when it differs from accuracy: a subset of labels, or multilabel
inputs), "macro avg", "weighted avg" and, for multilabel inputs, "samples avg". Each row holds "precision",
"recall", "f1-score" and "support"; the "accuracy" row is a single float.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Predicted labels.
    references (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Ground truth labels.
    labels (`list` of `int`): The label ids (column indices for multilabel inputs) to report, in order.
        Defaults to all labels seen in the data; pass it when some class may be absent from both inputs.
    target_names (`list` of `str`): Display names matching `labels` (or the sorted labels seen). Defaults to None.
    sample_weight (`list` of `float`): Sample weights. Defaults to None.
    zero_division (`'warn'`, `0.0`, `1.0` or `nan`): The value used when a division by zero occurs (a class never
        predicted, or never present). 'warn' acts as 0 and warns. Defaults to 'warn'.

Returns:
    classification_report (`dict`): {class name: {"precision", "recall", "f1-score", "support"}, ...,
        "accuracy" or "micro avg", "macro avg", "weighted avg"[, "samples avg"]}, values as scikit-learn gives
        them (Python floats; "support" is a float too in scikit-learn >= 1.6).

Examples:
    >>> report_metric = evaluate.load("classification_report")
    >>> results = report_metric.compute(references=[0, 1, 2, 0], predictions=[0, 1, 1, 0], target_names=["a", "b", "c"])
    >>> results["classification_report"]["a"]
    {'precision': 1.0, 'recall': 1.0, 'f1-score': 1.0, 'support': 2.0}
    >>> results["classification_report"]["accuracy"]
    0.75
"""

_CITATION = """
@article{scikit-learn,
  title={Scikit-learn: Machine Learning in {P}ython},
  author={Pedregosa, F. and Varoquaux, G. and Gramfort, A. and Michel, V.
         and Thirion, B. and Grisel, O. and Blondel, M. and Prettenhofer, P.
         and Weiss, R. and Dubourg, V. and Vanderplas, J. and Passos, A. and
         Cournapeau, D. and Brucher, M. and Perrot, M. and Duchesnay, E.},
  journal={Journal of Machine Learning Research},
  volume={12},
  pages={2825--2830},
  year={2011}
}
"""


def _to_builtin(value):
    """numpy scalars -> Python numbers (recursively), so the report is JSON-serializable."""
    if isinstance(value, dict):
        return {key: _to_builtin(val) for key, val in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ClassificationReport(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int32")),
                    "references": datasets.Sequence(datasets.Value("int32")),
                }
                if self.config_name == "multilabel"
                else {
                    "predictions": datasets.Value("int32"),
                    "references": datasets.Value("int32"),
                }
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.classification_report.html"
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        target_names=None,
        sample_weight=None,
        zero_division="warn",
    ):
        report = classification_report(
            references,
            predictions,
            labels=labels,
            target_names=target_names,
            sample_weight=sample_weight,
            output_dict=True,
            zero_division=zero_division,
        )
        return {"classification_report": _to_builtin(report)}
