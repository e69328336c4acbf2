"""Metrics that work offline and the statistics that compare methods over seeds."""
