"""The paper: LaTeX labels (labels), verdicts in words (prose), tables (tables), figures (figures/, drawn and saved
by draw, styled by palette), the macros of each section (macros/), their gathering and the PDF build (paper),
Nielsen's table and figure (nielsen) and the course's cat classifiers' table (course)."""
