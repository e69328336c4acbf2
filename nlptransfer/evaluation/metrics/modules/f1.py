# Bundled with nlptransfer: an offline drop-in replacement for the Hub's `evaluate-metric/f1` module.
# Same inputs, keyword arguments and return key; the math is scikit-learn's `f1_score`.
#   evaluate.load("<this file>")  /  evaluate.load("<this file>", "multilabel")
"""F1 metric (bundled, offline)."""

import datasets
import evaluate
import numpy as np
from sklearn.metrics import f1_score

_DESCRIPTION = """
The F1 score is the harmonic mean of precision and recall:
F1 = 2 * (precision * recall) / (precision + recall)
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
        (a label has neither true nor predicted samples). 'warn' acts as 0 and warns. Defaults to 'warn'.

Returns:
    f1 (`float`, or numpy array of `float` when `average=None`): between 0 and 1, higher is better.

Examples:
    >>> f1_metric = evaluate.load("f1")
    >>> f1_metric.compute(references=[0, 1, 0, 1, 0], predictions=[0, 0, 1, 1, 0])
    {'f1': 0.5}
    >>> f1_metric.compute(references=[0, 1, 2, 0, 1, 2], predictions=[0, 2, 1, 0, 0, 1], average="micro")
    {'f1': 0.3333333333333333}
    >>> f1_metric = evaluate.load("f1", "multilabel")
    >>> f1_metric.compute(references=[[0, 1, 1], [0, 1, 0]], predictions=[[0, 1, 1], [1, 1, 0]], average="micro")
    {'f1': 0.8571428571428571}
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
class F1(evaluate.Metric):
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
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html"
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
        score = f1_score(
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
        return {"f1": float(np.ravel(score)[0]) if np.size(score) == 1 else score}
