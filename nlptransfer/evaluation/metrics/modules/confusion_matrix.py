# Bundled with nlptransfer: an offline replacement for the Hub's `evaluate-metric/confusion_matrix` module.
# Same inputs, keyword arguments and return key; the math is scikit-learn's `confusion_matrix`
# (`multilabel_confusion_matrix` with the `multilabel` config). One difference: the matrix is returned as a
# nested Python list (JSON-serializable), where the Hub module returns a numpy array.
#   evaluate.load("<this file>")  /  evaluate.load("<this file>", "multilabel")
"""Confusion matrix metric (bundled, offline)."""

import datasets
import evaluate
from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix

_DESCRIPTION = """
The confusion matrix evaluates classification accuracy. Each row represents a true class and each column a
predicted class. With the `multilabel` config there is one 2x2 matrix per label, [[TN, FP], [FN, TP]].
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Predicted labels.
    references (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Ground truth labels.
    labels (`list` of `int`): Labels to index the matrix, to reorder or select a subset of labels (column indices
        with the `multilabel` config). Defaults to all labels seen, in sorted order.
    sample_weight (`list` of `float`): Sample weights. Defaults to None.
    normalize (`'true'`, `'pred'`, `'all'` or None): Normalize over the true (rows) or predicted (columns)
        conditions or the whole population. Not available with the `multilabel` config. Defaults to None.

Returns:
    confusion_matrix (`list` of `list`): entry [i][j] counts the samples of true class i predicted as class j
        (floats when `normalize` is set); with the `multilabel` config, a list of [[TN, FP], [FN, TP]], one per label.

Examples:
    >>> confusion_matrix_metric = evaluate.load("confusion_matrix")
    >>> confusion_matrix_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 1, 1, 2, 1, 0])
    {'confusion_matrix': [[1, 0, 1], [0, 2, 0], [1, 1, 0]]}
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


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ConfusionMatrix(evaluate.Metric):
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
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.confusion_matrix.html"
            ],
        )

    def _compute(self, predictions, references, labels=None, sample_weight=None, normalize=None):
        if self.config_name == "multilabel":
            if normalize is not None:
                raise ValueError(
                    "`normalize` is not supported with the multilabel config of confusion_matrix"
                )
            matrix = multilabel_confusion_matrix(
                references, predictions, sample_weight=sample_weight, labels=labels
            )
        else:
            matrix = confusion_matrix(
                references, predictions, labels=labels, sample_weight=sample_weight, normalize=normalize
            )
        return {"confusion_matrix": matrix.tolist()}
