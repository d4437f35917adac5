"""The documentation (README.md, config/README.md, docs/*.md): every internal link resolves, every design citation
names a heading of docs/design.md, the methods table names the config's methods, and the README's "Adding a method"
examples run as written."""

import math
import re
from pathlib import Path

import pytest
import yaml
from conftest import merge

from covbench import components
from covbench import config as covconfig
from covbench.training import tune
from covbench.training.train import train

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "config" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, inline code spans removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text (link targets and code marks dropped), lower case, every character
    other than a letter, digit, space, hyphen or underscore removed, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            out.add(base if count == 0 else f"{base}-{count}")
    return out


def test_the_pages_exist_and_the_readme_is_a_front_door():
    assert [p.relative_to(ROOT).as_posix() for p in PAGES[:2]] == ["README.md", "config/README.md"]
    assert {p.name for p in PAGES[2:]} >= {"methods.md", "reproducibility.md", "pipeline.md"}
    assert len((ROOT / "README.md").read_text()) <= 10_000


def test_slug_follows_github():
    assert slug("The reviewers' bundle") == "the-reviewers-bundle"
    assert slug("Methods as rules") == "methods-as-rules"
    assert slug("The `compare` block (section 7)") == "the-compare-block-section-7"
    assert slug("Fused LSTM sequence (commit b055820): 0.92x") == "fused-lstm-sequence-commit-b055820-092x"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_internal_link_resolves(page):
    broken = []
    for line in prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists() or ROOT not in (file, *file.parents):
                broken.append(f"{target}: no file {file}")
            elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
                broken.append(f"{target}: no heading with anchor #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


# Where the design is cited: docs/design.md#<anchor> in code, config, tests and docs (a relative design.md#<anchor>
# link in Markdown). The old external file's name is spelt with a character class (and built in the test below) so
# that this file does not match itself.
DESIGN_PAGE = ROOT / "docs" / "design.md"
CITING = ["README.md", "BENCHMARKS.md", "Snakefile", "src", "workflow", "config", "docs", "tests", "paper"]
CITING_SUFFIXES = {".py", ".smk", ".yaml", ".yml", ".md", ".rst", ".tex", ".bib", ".txt", ".cfg", ".toml", ""}
CITATION = re.compile(r"design\.md#([\w-]+)")
STALE = re.compile(r"shared/DESIG[N]|\bDESIG[N]\b")


def citing_files() -> list[Path]:
    """The text files of the places that may cite the design (caches and build outputs left out)."""
    files = []
    for place in CITING:
        path = ROOT / place
        candidates = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        files += [
            f
            for f in candidates
            if f.is_file()
            and f.suffix in CITING_SUFFIXES
            and not {"__pycache__", ".pytest_cache"} & set(f.parts)
            and not any(part.endswith(".egg-info") for part in f.parts)
        ]
    return files


def broken_design_citations(files: list[Path], headings: set[str]) -> tuple[int, list[str]]:
    """How many design citations the files hold, and 'file:line: problem' for every one whose anchor is no heading
    of docs/design.md and every mention of the old, external design file."""
    count, broken = 0, []
    for f in files:
        for number, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            where = f"{f.relative_to(ROOT) if ROOT in f.parents else f}:{number}"
            for anchor in CITATION.findall(line):
                count += 1
                if anchor not in headings:
                    broken.append(f"{where}: no heading with anchor #{anchor} in docs/design.md")
            if STALE.search(line):
                broken.append(f"{where}: cites the external design ({STALE.search(line).group(0)})")
    return count, broken


def test_every_design_citation_names_a_heading_of_the_design():
    """Code, config, tests and docs cite the design in the repository, by heading; nothing points outside it."""
    count, broken = broken_design_citations(citing_files(), anchors(DESIGN_PAGE))
    assert count > 0, "no design citation found: has the citation form changed?"
    assert not broken, f"{len(broken)} broken design citations:\n" + "\n".join(broken)


def test_a_broken_design_citation_is_found(tmp_path):
    headings = anchors(DESIGN_PAGE)
    assert {"tuning", "verdicts", "the-best-remedy", "the-covariance-force", "the-recurrent-track"} <= headings
    cited = tmp_path / "cites.py"
    broken_anchor, external = "design.md#" + "no-such-heading", "shared/" + "design".upper() + ".md"
    cited.write_text(f"# docs/design.md#tuning\n# docs/{broken_anchor}\n# see {external}\n")
    count, broken = broken_design_citations([cited], headings)
    assert count == 2
    assert [line.split(": ", 1)[0].rsplit(":", 1)[1] for line in broken] == ["2", "3"]


def test_the_methods_table_names_every_mlp_method_of_the_config(config):
    table = re.findall(r"^\| `(\w+)` \|", (ROOT / "docs" / "methods.md").read_text(), re.MULTILINE)
    mlp = [name for name, method in config["methods"].items() if "cell" not in method and "rule" not in method]
    assert sorted(table) == sorted(mlp)


def section(text: str, title: str) -> str:
    """The text under the heading `title`, up to the next heading of the same or a higher level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if (m := HEADING.match(line)) and m.group(2) == title)
    level = len(HEADING.match(lines[start]).group(1))
    end, fenced = len(lines), False
    for i in range(start + 1, len(lines)):
        if FENCE.match(lines[i].strip()):
            fenced = not fenced
        elif not fenced and (m := HEADING.match(lines[i])) and len(m.group(1)) <= level:
            end = i
            break
    return "\n".join(lines[start + 1 : end])


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Components registered by the test are gone after it."""
    for kind in components.REGISTRY:
        monkeypatch.setitem(components.REGISTRY, kind, dict(components.REGISTRY[kind]))


def test_the_readme_examples_of_adding_a_method_run_as_written(config, splits, hp, scratch_registry, one_thread):
    """The component module registers its component, each config entry validates merged over the default config,
    and each method it defines builds its spec and trains a tiny model for an epoch; the command names the file."""
    blocks = code_blocks(section((ROOT / "README.md").read_text(), "Adding a method"))
    assert [language for language, _ in blocks] == ["yaml", "bash", "python", "yaml"]
    config_file = None
    trained = []
    for language, code in blocks:
        first = code.splitlines()[0]
        if language == "python":
            module = first.removeprefix("# ")
            assert (ROOT / module).parent == ROOT / "src" / "covbench" / "components"
            exec(compile(code, module, "exec"), {"__name__": "covbench.components.example"})
        elif language == "bash":
            assert f"CONFIG={config_file}" in code.split()
        else:
            config_file = config_file or first.removeprefix("# ")
            entry = yaml.safe_load(code)
            merged = covconfig.validate(merge(config, entry))
            assert set(entry["methods"]) <= set(merged["grid"]["methods"])
            for name in entry["methods"]:
                spec = covconfig.method_spec(merged, name, "mnist")
                tuned = tune.trial_grid(spec, {**merged["tune"], "rung_epochs": [1]})[0]
                spec, method_hp = tune.apply_choice(spec, {**hp, "epochs": 1}, {**tuned, "lr": 0.1})
                result = train(splits, spec, method_hp, 2, [0])
                assert len(result.epochs) == 1 and not result.epochs.diverged.any()
                assert math.isfinite(result.epochs.train_loss.iloc[0])
                trained.append(name)
    assert config_file == "config/mine.yaml"
    assert trained == ["tanh_he_clip_covariance", "swish_he"]
