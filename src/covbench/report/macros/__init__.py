"""The paper's macros, one module per section: setup (grid, training setup, tuning), results (headline, verdicts,
references), best_shot (the lambda sweep and nested tuning), mechanism, long_memories (the recurrent track),
course (the course's cat classifiers, an appendix sanity check).
covbench.report.paper gathers them."""
