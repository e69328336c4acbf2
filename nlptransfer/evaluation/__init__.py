"""Scoring and comparing methods.

- `metrics`: classification and translation metrics that work offline (bundled evaluate modules).
- `comparison`: did transfer help? Every method on the same seeded subsets, verdicts by paired t-test.
- `baselines`: the no-transfer TF-IDF + logistic regression baseline.
- `statistics`: mean and sample std, the paired t-test p-value, Spearman's rank correlation.

Text and files from these results: `nlptransfer.reporting`.
"""
