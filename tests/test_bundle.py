"""Results bundles (docs/reproducibility.md "The reviewers' bundle"): made from a tiny real run, verified and
unpacked; a corrupted, tampered or truncated one is refused with one line, and results/ stays as it was."""

import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest
import torch
import yaml

from covbench.data.splits import seed_data
from covbench.tools import bundle
from covbench.training import sklearn_mlp

RUN = "results/runs/mnist/sklearn_mlp/depth2/seed0"
CONFIG = {"grid": {"methods": ["sklearn_mlp"], "seeds": [0]}}


@pytest.fixture
def built(tmp_path, splits):
    """A project whose results/ holds one real run (sklearn_mlp, 2 epochs), a tuning record and a training log, and
    its bundle."""
    root = tmp_path / "built"
    hp = {"width": 8, "epochs": 2, "batch_size": 50, "log_every": 2}
    result = sklearn_mlp.train_seed(
        {k: v.numpy() for k, v in splits.items()}, 2, hp, {}, 0, torch.Generator().manual_seed(1)
    )
    ids = {"dataset": "mnist", "method": "sklearn_mlp", "depth": 2, "seed": 0}
    sklearn_mlp.write_run(str(root / RUN), ids, result, hp, seed_data(splits, "official", 0, 0)[1])
    (root / "results/tune/mnist/baseline").mkdir(parents=True)
    (root / "results/tune/mnist/baseline/depth2.json").write_text(json.dumps({"chosen": {"lr": 0.1}}))
    (root / "results/logs/sklearn_mlp/mnist").mkdir(parents=True)
    (root / "results/logs/sklearn_mlp/mnist/sklearn_mlp.log").write_text("trained\n")
    inputs = [f"{RUN}/{name}" for name in ("run.json", "epochs.parquet", "layer_stats.parquet", "probes.parquet")]
    manifest = bundle.write_bundle(
        [*inputs, "results/tune/mnist/baseline/depth2.json"],
        "results/bundle.tar.gz",
        CONFIG,
        ["train", "sklearn_mlp"],
        root=root,
    )
    return root, manifest


@pytest.fixture
def fresh(tmp_path):
    """A checkout that already has a results/ folder of its own, to show that a refused bundle leaves it alone."""
    root = tmp_path / "fresh"
    (root / "results/data").mkdir(parents=True)
    (root / "results/data/note.txt").write_text("mine\n")
    return root


def snapshot(root):
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted((root / "results").rglob("*"))
        if p.is_file()
    }


def unpack_cli(archive, cwd):
    return subprocess.run(
        [sys.executable, "-m", "covbench.tools.bundle", "unpack", str(archive)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_manifest_lists_every_file_with_its_checksum_config_and_versions(built):
    root, manifest = built
    assert sorted(manifest["files"]) == sorted(
        [
            *(f"{RUN}/{n}" for n in ("epochs.parquet", "layer_stats.parquet", "probes.parquet", "run.json")),
            "results/logs/sklearn_mlp/mnist/sklearn_mlp.log",
            "results/tune/mnist/baseline/depth2.json",
        ]
    )
    for path, entry in manifest["files"].items():
        assert entry == {"sha256": bundle.sha256_of(root / path), "size": (root / path).stat().st_size}
    assert manifest["config"] == CONFIG and manifest["training_rules"] == ["train", "sklearn_mlp"]
    assert {"python", "torch", "scikit-learn", "snakemake"} <= set(manifest["packages"])
    assert "commit" in manifest and "dirty" in manifest


def test_good_bundle_verifies_and_unpacks(built, fresh):
    root, manifest = built
    mine = snapshot(fresh)
    bundle.unpack(root / "results/bundle.tar.gz", fresh)
    for path in manifest["files"]:
        assert (fresh / path).read_bytes() == (root / path).read_bytes()
        assert int((fresh / path).stat().st_mtime) == int((root / path).stat().st_mtime)  # training's order kept
    assert yaml.safe_load((fresh / bundle.CONFIG_PATH).read_text()) == CONFIG
    assert {k: v for k, v in snapshot(fresh).items() if k in mine} == mine
    bundle.unpack(root / "results/bundle.tar.gz", fresh)  # again: the same files are there, nothing to refuse


def test_one_corrupted_byte_is_refused_with_one_line_and_nothing_unpacked(built, fresh):
    root, manifest = built
    data = bytearray((root / "results/bundle.tar.gz").read_bytes())
    data[len(data) // 2] ^= 0x01
    bad = fresh.parent / "corrupt.tar.gz"
    bad.write_bytes(bytes(data))
    before = snapshot(fresh)
    done = unpack_cli(bad, fresh)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith("nothing unpacked"), done.stderr
    # the file being read when it failed, or the archive itself when the files' contents are intact (a change in the
    # compressed stream that decompresses to the same bytes, in a tar header or in the manifest) or when the flip
    # leaves the compressed stream undecodable (which of these depends on where the byte falls)
    named = re.match(r"bundle error: checksum of (\S+) fails", lines[0]) or re.match(
        r"bundle error: (\S+) is not a readable \.tar\.gz", lines[0]
    )
    assert named and named.group(1) in [*manifest["files"], bundle.MANIFEST, str(bad)], lines[0]
    assert snapshot(fresh) == before


def test_a_tampered_file_is_named(built, fresh):
    """One byte of one member changed, the manifest kept: the refusal names exactly that file."""
    root, _ = built
    target = f"{RUN}/epochs.parquet"
    tampered = fresh.parent / "tampered.tar.gz"
    with tarfile.open(root / "results/bundle.tar.gz", "r:gz") as good, tarfile.open(tampered, "w:gz") as out:
        for member in good.getmembers():
            content = bytearray(good.extractfile(member).read())
            if member.name == target:
                content[100] ^= 0xFF
            out.addfile(member, io.BytesIO(bytes(content)))
    before = snapshot(fresh)
    with pytest.raises(
        bundle.BundleError,
        match=rf"^bundle error: checksum of {target} fails \(manifest [0-9a-f]{{12}}, "
        r"archive [0-9a-f]{12}\); nothing unpacked$",
    ):
        bundle.unpack(tampered, fresh)
    assert snapshot(fresh) == before


def test_a_truncated_bundle_is_refused(built, fresh):
    root, _ = built
    data = (root / "results/bundle.tar.gz").read_bytes()
    before = snapshot(fresh)
    for cut in (len(data) // 3, len(data) - 10):  # inside a file, and inside the gzip trailer after the last one
        short = fresh.parent / "short.tar.gz"
        short.write_bytes(data[:cut])
        done = unpack_cli(short, fresh)
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
        assert done.stderr.startswith("bundle error: checksum of ") and "nothing unpacked" in done.stderr
        assert snapshot(fresh) == before


def test_every_byte_is_covered(built, fresh):
    """Whatever byte changes, the bundle is refused: the manifest covers the files, the seal in the gzip header
    everything else."""
    root, _ = built
    data = (root / "results/bundle.tar.gz").read_bytes()
    for position in range(0, len(data), max(1, len(data) // 40)):
        changed = bytearray(data)
        changed[position] ^= 0x04
        (fresh.parent / "changed.tar.gz").write_bytes(bytes(changed))
        with pytest.raises(bundle.BundleError, match="^bundle error: "):
            bundle.verify(fresh.parent / "changed.tar.gz")


def test_results_of_another_build_are_not_overwritten(built, fresh):
    root, _ = built
    (fresh / RUN).mkdir(parents=True)
    (fresh / RUN / "run.json").write_text("{}")
    with pytest.raises(bundle.BundleError, match=f"^bundle error: {RUN}/run.json exists and differs"):
        bundle.unpack(root / "results/bundle.tar.gz", fresh)
    assert not (fresh / RUN / "epochs.parquet").exists()


def test_a_member_outside_results_is_refused(built, fresh, tmp_path):
    root, manifest = built
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as out:
        data = json.dumps(
            {**manifest, "files": {"../escape.txt": {"sha256": bundle.sha256_of(root / RUN / "run.json"), "size": 0}}}
        ).encode()
        info = tarfile.TarInfo(bundle.MANIFEST)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
        out.add(root / RUN / "run.json", arcname="../escape.txt")
    with pytest.raises(bundle.BundleError, match="is not a file of the manifest"):
        bundle.unpack(evil, fresh)
    assert not (fresh.parent / "escape.txt").exists() and not os.path.exists(tmp_path / "escape.txt")


def test_the_route_refuses_to_go_on_when_snakemake_would_still_train(tmp_path):
    """check_no_training reads `snakemake -n`: a toy workflow whose training output is there plans only what
    comes after it; with the output missing, the unpacked bundle is not enough and the route stops."""
    (tmp_path / "Snakefile").write_text(
        'rule all:\n    input: "results/paper.txt"\n'
        'rule train:\n    input: "results/data.pt"\n    output: "results/runs/run.json"\n    shell: "echo > {output}"\n'
        'rule paper:\n    input: "results/runs/run.json"\n    output: "results/paper.txt"\n    shell: "cp {input} {output}"\n'
    )
    (tmp_path / "results/runs").mkdir(parents=True)
    (tmp_path / "results/bundle").mkdir()
    (tmp_path / bundle.CONFIG_PATH).write_text("grid: {}\n")
    (tmp_path / "results/runs/run.json").write_text("{}")  # unpacked; its input, the data, is not there
    manifest = {"training_rules": ["train"]}
    assert bundle.check_no_training(tmp_path, manifest) == {"paper": 1, "all": 1}
    (tmp_path / "results/runs/run.json").unlink()
    (tmp_path / "results/data.pt").write_text("")
    with pytest.raises(
        bundle.BundleError,
        match=r"^bundle error: with the bundle unpacked snakemake would still run "
        r"train \(1\)",
    ):
        bundle.check_no_training(tmp_path, manifest)


def test_version_differences_name_each_package_that_differs_or_is_missing():
    bundled = {"python": "3.11.7", "torch": "2.13.0+cpu", "snakemake": "9.27.1", "gone": "1.0"}
    installed = {"python": "3.11.7", "torch": "2.13.0+cpu", "snakemake": "9.28.0"}
    assert bundle.version_differences(bundled, installed) == [
        "snakemake 9.28.0 (bundle 9.27.1)",
        "gone not installed (bundle 1.0)",
    ]
    assert bundle.version_differences(installed, installed) == []


def test_unpack_warns_in_one_line_when_package_versions_differ(built, fresh, monkeypatch, capsys):
    """A bundle made where snakemake was another version unpacks (a warning, not a refusal) and names it."""
    root, _ = built
    real = bundle.package_versions()
    monkeypatch.setattr(bundle, "package_versions", lambda: {**real, "snakemake": "0.0.1"})
    bundle.write_bundle(
        list(bundle.verify(root / "results/bundle.tar.gz")["files"]),
        "results/other.tar.gz",
        CONFIG,
        ["train", "sklearn_mlp"],
        root=root,
    )
    monkeypatch.setattr(bundle, "package_versions", lambda: real)
    monkeypatch.setattr(bundle, "check_no_training", lambda where, manifest: {"paper": 1})
    monkeypatch.chdir(fresh)
    assert bundle.main(["unpack", str(root / "results/other.tar.gz")]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning")]
    assert warnings == [
        f"warning: installed packages differ from the bundle's (1): snakemake {real['snakemake']} (bundle 0.0.1)"
    ]
