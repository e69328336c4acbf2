# Bundled with nlptransfer: an offline drop-in replacement for the Hub's `evaluate-metric/sacrebleu` module.
# Same inputs (predictions: list of str, references: list of lists of str), keyword arguments and return keys;
# the math is sacrebleu's `corpus_bleu`.
#   evaluate.load("<this file>")
"""SacreBLEU metric (bundled, offline)."""

import datasets
import evaluate
import sacrebleu as scb

_DESCRIPTION = """
SacreBLEU computes corpus BLEU (Papineni et al. 2002) with standard, shareable tokenisation and signatures
(Post 2018). Every prediction needs the same number of references.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `str`): translations to score.
    references (`list` of `list` of `str`): one or more references per prediction.
    smooth_method (`str`): 'none', 'floor', 'add-k' or 'exp' (default).
    smooth_value (`float`): value for 'floor' / 'add-k'.
    lowercase (`bool`): lowercase before scoring. Defaults to False.
    tokenize (`str`): sacrebleu tokenizer, default '13a' ('zh', 'intl', 'char', 'none', ...).
    force (`bool`): score already-tokenised input without a warning.
    use_effective_order (`bool`): only count n-gram orders that have matches (sentence-level BLEU).

Returns:
    score (`float`): BLEU (0-100), counts, totals, precisions, bp, sys_len, ref_len.

Examples:
    >>> bleu = evaluate.load("sacrebleu")
    >>> bleu.compute(predictions=["hello there general kenobi"], references=[["hello there general kenobi"]])["score"]
    100.00000000000004
"""

_CITATION = """
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Sacrebleu(evaluate.Metric):
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
        smooth_method="exp",
        smooth_value=None,
        force=False,
        lowercase=False,
        tokenize=None,
        use_effective_order=False,
    ):
        if isinstance(references[0], str):
            references = [[ref] for ref in references]
        n_refs = len(references[0])
        if any(len(refs) != n_refs for refs in references):
            raise ValueError("Sacrebleu requires the same number of references for each prediction")
        transformed = [[refs[i] for refs in references] for i in range(n_refs)]
        output = scb.corpus_bleu(
            predictions,
            transformed,
            smooth_method=smooth_method,
            smooth_value=smooth_value,
            force=force,
            lowercase=lowercase,
            use_effective_order=use_effective_order,
            **({"tokenize": tokenize} if tokenize is not None else {}),
        )
        return {
            "score": output.score,
            "counts": output.counts,
            "totals": output.totals,
            "precisions": output.precisions,
            "bp": output.bp,
            "sys_len": output.sys_len,
            "ref_len": output.ref_len,
        }
