"""Training: one (dataset, method) job (job) with its settings (settings), tuning (tune), the loop (train) with its
state and checkpoint (state), tensor helpers (batches), the process (process) and the collapse policy (collapse),
a run's files (runs), the statistics logged per step (stats), linear probes (probes), the run-file contract
(contract), the vanishing index of a run (vanishing), the lambda sweep's training (lambda_sweep), Nielsen's networks
(nielsen), the course's cat classifiers (course) and the scikit-learn MLP method (sklearn_mlp)."""
