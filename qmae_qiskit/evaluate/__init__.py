"""Scoring: metrics, no-circuit baselines, the classifier, evaluation, submission, figures (Table 1 and Fig. 8
are made in `experiments/`)."""
