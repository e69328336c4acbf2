"""Benchmarks, run with `make bench` or `python -m benchmarks.<name>`; results land in benchmarks/results/."""
