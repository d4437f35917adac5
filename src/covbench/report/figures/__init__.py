"""The paper's figures: layout (theme, sizes, shared drawing helpers), results, mechanism and recurrent (one function
per figure each, gathered by covbench.report.draw)."""
