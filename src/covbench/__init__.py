"""covbench: the vanishing-gradient benchmark's package, in layers by pipeline stage.

A module may import from its own layer or a lower one, never a higher one (tests/test_imports.py checks it):

    7  tools/       bench, bench_recurrent, cost, bundle: command-line tools (python -m covbench.tools.bench)
    6  report/      the paper: labels, prose, tables, figures/, macros/ (one module per section), paper, draw
    5  analysis/    summaries over seeds (aggregate), tests and verdicts (compare), the sweep's and mechanism's numbers
    4  training/    train, tune, the grid's cells, step statistics, probes, the run-file contract, the lambda sweep
                    and Nielsen's and the course's networks trained, the scikit-learn MLP
    3  config.py    the config's validation and method specs (imports components)
    2  components/  the parts a method is composed of (activation, init, norm, aux, ...); models/: MLP and RNN
    1  data/        datasets (download, verify, prepare, load) and the noise-padded sequences
    0  atomic.py, jobs.py, subnormals.py: file helpers and numeric helpers every layer may use
"""
