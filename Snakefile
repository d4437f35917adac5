# Does the covariance force beat the standard remedies for vanishing gradients?
# `snakemake --cores all` downloads the data, trains the grid of config/config.yaml, aggregates, draws
# figures and tables, and builds results/paper/main.pdf. See README.md.
import glob
import os

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/nielsen.smk"
include: "workflow/rules/course.smk"
include: "workflow/rules/paper.smk"
include: "workflow/rules/bundle.smk"


# Methods provided by rules (docs/methods.md "Methods as rules"): every rule file here is included, and a grid method whose
# config entry names one of its rules (`rule: <name>`) is produced by that rule instead of rule `train`.
for method_rules in sorted(glob.glob(os.path.join(workflow.basedir, "workflow", "rules", "methods", "*.smk"))):

    include: method_rules


check_method_rules()


rule all:
    input:
        final_targets(),
