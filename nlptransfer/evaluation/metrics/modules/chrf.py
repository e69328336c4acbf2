# Bundled with nlptransfer: an offline drop-in replacement for the Hub's `evaluate-metric/chrf` module.
# Same inputs (predictions: list of str, references: list of lists of str), keyword arguments and return keys;
# the math is sacrebleu's `CHRF`.
#   evaluate.load("<this file>")
"""chrF / chrF++ metric (bundled, offline)."""

import datasets
import evaluate
from sacrebleu import CHRF

_DESCRIPTION = """
chrF (Popović 2015) is the F-score of character n-gram matches (chrF++ adds word n-grams), computed with
sacrebleu. More sensitive than BLEU for morphologically rich languages and weak systems.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): translations to score.
    references (`list` of `list` of `str`): one or more references per prediction.
    char_order (`int`): character n-gram order. Defaults to 6.
    word_order (`int`): word n-gram order; 2 gives chrF++. Defaults to 0.
    beta (`int`): recall weight. Defaults to 2.
    lowercase (`bool`): case-insensitive. Defaults to False.
    whitespace (`bool`): include whitespace in character n-grams. Defaults to False.
    eps_smoothing (`bool`): sacrebleu/chrF++.py-style smoothing. Defaults to False.

Returns:
    score (`float`): chrF (0-100), char_order, word_order, beta.

Examples:
    >>> chrf = evaluate.load("chrf")
    >>> chrf.compute(predictions=["the cat sat"], references=[["the cat sat"]])["score"]
    100.0
"""

_CITATION = """
@inproceedings{popovic-2015-chrf,
    title = "chr{F}: character n-gram {F}-score for automatic {MT} evaluation",
    author = "Popovi{\\'c}, Maja",
    booktitle = "Proceedings of the Tenth Workshop on Statistical Machine Translation",
    year = "2015",
    pages = "392--395",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class ChrF(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Sequence(
                            datasets.Value("string", id="sequence"), id="references"
                        ),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string", id="sequence"),
                        "references": datasets.Value("string", id="sequence"),
                    }
                ),
            ],
            reference_urls=["https://github.com/mjpost/sacrebleu"],
        )

    def _compute(
        self,
        predictions,
        references,
        char_order=CHRF.CHAR_ORDER,
        word_order=CHRF.WORD_ORDER,
        beta=CHRF.BETA,
        lowercase=False,
        whitespace=False,
        eps_smoothing=False,
    ):
        if isinstance(references[0], str):
            references = [[ref] for ref in references]
        n_refs = len(references[0])
        if any(len(refs) != n_refs for refs in references):
            raise ValueError("chrF requires the same number of references for each prediction")
        transformed = [[refs[i] for refs in references] for i in range(n_refs)]
        scorer = CHRF(
            char_order=char_order,
            word_order=word_order,
            beta=beta,
            lowercase=lowercase,
            whitespace=whitespace,
            eps_smoothing=eps_smoothing,
        )
        output = scorer.corpus_score(predictions, transformed)
        return {
            "score": output.score,
            "char_order": output.char_order,
            "word_order": output.word_order,
            "beta": output.beta,
        }
