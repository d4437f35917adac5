"""Training: the loop (train), tuning (tune), one grid cell's jobs (cell), the statistics logged per step (stats),
linear probes (probes), the run-file contract (contract), the vanishing index of a run (vanishing), the lambda
sweep's training (lambda_sweep), Nielsen's networks (nielsen), the course's cat classifiers (course) and the
scikit-learn MLP method (sklearn_mlp)."""
