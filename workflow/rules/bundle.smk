# The results bundle (docs/reproducibility.md "The reviewers' bundle"): `make bundle` archives every output of the
# training rules, with their logs and benchmark files, behind a manifest of SHA256 checksums, the commit, the
# resolved config and the package versions (src/covbench/tools/bundle.py). Not part of `rule all`.
rule bundle:
    input:
        training_outputs(),
    output:
        "results/bundle.tar.gz",
    log:
        "results/logs/bundle/bundle.log",
    params:
        config=config,
        training_rules=TRAINING_RULES,
    script:
        "../scripts/bundle.py"
