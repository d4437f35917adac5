"""Analysis of the runs: summaries over seeds (aggregate), paired tests and verdicts (compare), the lambda sweep's
selection and verdicts (sweep) and the mechanism's numbers (mechanism). Numbers only: the words are in report/."""
