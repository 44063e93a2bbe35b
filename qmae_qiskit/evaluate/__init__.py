"""Scoring: metrics, no-circuit baselines, the classifier, evaluation, figures, Table 1."""
