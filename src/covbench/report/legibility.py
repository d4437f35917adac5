"""Is the built paper readable as printed? The abstract's length in words, the pages that hold much
text too small to read and the length of the main text, measured on the PDF with poppler's pdftotext, so they can
be run on any build:

    python -m covbench.report.legibility results/paper/main.pdf
"""

import re
import subprocess
import sys
from pathlib import Path

MAX_ABSTRACT_WORDS = 250  # what venues allow
SMALL_WORD_PT = 5.0  # a word whose box is lower than this prints too small to read
MAX_SMALL_WORDS = 20  # per page: a few sub- and superscripts are fine, a figure's or table's worth is not
MAX_MAIN_PAGES = 15  # the main text, up to the references


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def abstract_words(pdf: Path) -> int:
    """Words between the heading "Abstract" and the first section heading ("1 Introduction")."""
    text = pdf_text(pdf)
    start = text.index("Abstract") + len("Abstract")
    end = re.search(r"^\s*1\s+\S", text[start:], re.MULTILINE)
    return len(text[start : start + end.start() if end else None].split())


def main_text_pages(pdf: Path) -> int:
    """Pages up to the references (pdftotext ends every page with a form feed): the page they begin on, less one
    when nothing precedes their heading there; 0 when there are none."""
    for number, page in enumerate(pdf_text(pdf).split("\f"), start=1):
        heading = re.search(r"^References$", page, re.MULTILINE)
        if heading:
            return number if page[: heading.start()].strip() else number - 1
    return 0


def small_words_per_page(pdf: Path, below: float = SMALL_WORD_PT) -> list[int]:
    """For every page, how many words have a box (pdftotext -bbox: yMax - yMin, in points) lower than `below`. Read
    with a pattern, not an XML parser: a word of a figure's font can hold a control character."""
    xhtml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    boxes = r'<word xMin="[^"]*" yMin="([^"]*)" xMax="[^"]*" yMax="([^"]*)"'
    return [
        sum(float(high) - float(low) < below for low, high in re.findall(boxes, page))
        for page in xhtml.split("<page ")[1:]
    ]


def problems(pdf: Path) -> list[str]:
    """What a reviewer could not read in one sitting: an abstract over MAX_ABSTRACT_WORDS, a main text over
    MAX_MAIN_PAGES, pages with over MAX_SMALL_WORDS small words."""
    found = []
    words = abstract_words(pdf)
    if words > MAX_ABSTRACT_WORDS:
        found.append(f"the abstract has {words} words (at most {MAX_ABSTRACT_WORDS})")
    pages = main_text_pages(pdf)
    if not 0 < pages <= MAX_MAIN_PAGES:
        found.append(f"the main text runs to page {pages} (at most {MAX_MAIN_PAGES})")
    for page, count in enumerate(small_words_per_page(pdf), start=1):
        if count > MAX_SMALL_WORDS:
            found.append(f"page {page} has {count} words under {SMALL_WORD_PT:g} pt (at most {MAX_SMALL_WORDS})")
    return found


if __name__ == "__main__":
    pdf = Path(sys.argv[1] if len(sys.argv) > 1 else "results/paper/main.pdf")
    pages = small_words_per_page(pdf)
    print(
        f"{pdf}: abstract {abstract_words(pdf)} words; main text {main_text_pages(pdf)} pages; {len(pages)} pages, "
        f"words under {SMALL_WORD_PT:g} pt per page {pages}"
    )
    print("\n".join(problems(pdf)) or "legible")
    sys.exit(1 if problems(pdf) else 0)
