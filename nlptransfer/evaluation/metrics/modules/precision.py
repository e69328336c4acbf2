# Bundled with nlptransfer: an offline drop-in replacement for the Hub's `evaluate-metric/precision` module.
# Same inputs, keyword arguments and return key; the math is scikit-learn's `precision_score`.
#   evaluate.load("<this file>")  /  evaluate.load("<this file>", "multilabel")
"""Precision metric (bundled, offline)."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import precision_score

_DESCRIPTION = """
Precision is the fraction of correctly labeled positive examples out of all the examples labeled
positive: Precision = TP / (TP + FP)
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Predicted labels.
    references (`list` of `int`, or `list` of `list` of `int` (0/1 indicators) with the `multilabel` config):
        Ground truth labels.
    labels (`list` of `int`): The labels to include when `average != 'binary'`, and their order when `average`
        is None. Labels absent from the data give 0 (or `zero_division`) components in a macro average. For
        multilabel inputs these are column indices. Defaults to all labels seen, in sorted order.
    pos_label (`int`): The positive class when `average='binary'`. Defaults to 1.
    average (`str` or None): 'binary' (default), 'micro', 'macro', 'weighted', 'samples' (multilabel only), or
        None for one score per label (returned as a numpy array, as the Hub module does).
    sample_weight (`list` of `float`): Sample weights. Defaults to None.
    zero_division (`'warn'`, `0.0`, `1.0` or `nan`): The value used when a division by zero occurs
        (a label is never predicted). 'warn' acts as 0 and warns. Defaults to 'warn'.

Returns:
    precision (`float`, or numpy array of `float` when `average=None`): between 0 and 1, higher is better.

Examples:
    >>> precision_metric = evaluate.load("precision")
    >>> precision_metric.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0])
    {'precision': 0.5}
    >>> precision_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 2, 1, 0, 0, 1], average="micro")
    {'precision': 0.3333333333333333}
    >>> precision_metric = evaluate.load("precision", "multilabel")
    >>> precision_metric.compute(references=[[0, 1, 1], [0, 1, 0]], predictions=[[0, 1, 1], [1, 1, 0]], average="micro")
    {'precision': 0.75}
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
class Precision(evaluate.Metric):
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
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.precision_score.html"
            ],
        )

    def _compute(
        self,
        predictions,
        references,
        labels=None,
        pos_label=1,
        average="binary",
        sample_weight=None,
        zero_division="warn",
    ):
        score = precision_score(
            references,
            predictions,
            labels=labels,
            pos_label=pos_label,
            average=average,
            sample_weight=sample_weight,
            zero_division=zero_division,
        )
        # Like the Hub module: a Python float for a single score, the numpy array for per-label scores.
        # scikit-learn >= 1.6 returns averaged scores as Python floats, which broke the Hub module's
        # `score.size` (huggingface/evaluate#655); np.size and np.ravel work for both.
        return {"precision": float(np.ravel(score)[0]) if np.size(score) == 1 else score}
