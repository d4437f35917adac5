"""Command-line tools around the pipeline: bench and bench_recurrent (timing benchmarks), cost (a config's cost
estimate), bundle (archive and rebuild from what training produced). Run as python -m covbench.tools.<name>."""
