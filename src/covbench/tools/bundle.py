"""Results bundles: everything training produced, in one archive a reviewer can rebuild the paper from
(docs/reproducibility.md "The reviewers' bundle").

`make bundle` (rule `bundle`) writes results/bundle.tar.gz: first `manifest.json` (the SHA256 and size of every
file, the commit, the resolved config, the training rules and the package versions), then the outputs of the
training rules (run files, tuning records, lambda sweep cells, the Nielsen networks' speeds) with those rules'
logs and benchmark files, under their paths in results/. `make all BUNDLE=<archive>` runs

    python -m covbench.tools.bundle unpack <archive>

    python -m covbench.tools.bundle rebuild <archive> --cores N

which checks every member against the manifest before it writes anything (a tampered or truncated archive stops
with one line naming the file whose checksum fails, and results/ is left as it was), unpacks, writes the bundle's
config to results/bundle/config.yaml, names in one line the installed packages whose versions differ from the
bundle's, and refuses to go on if `snakemake -n` with that config would still run a training or data job; then
snakemake runs with that config and the route's rerun triggers (ROUTE_TRIGGERS), which leaves it only what comes
after training.
"""

import argparse
import hashlib
import importlib.metadata
import io
import json
import os
import platform
import re
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import yaml

from covbench import atomic
from covbench.data.datasets import sha256_of

MANIFEST = "manifest.json"  # the archive's first member
CONFIG_PATH = "results/bundle/config.yaml"  # where unpacking writes the bundle's resolved config
MANIFEST_COPY = "results/bundle/manifest.json"
RECORD_DIRS = ("results/logs", "results/benchmarks")  # per rule: the training jobs' logs and benchmark files
DATA_RULES = ("download", "prepare")  # before training: the bundle route needs no data
CHUNK = 1 << 20
# The route's rerun triggers: all of Snakemake's but `code`, which reruns a job whose rule's script is newer than its
# outputs. In a fresh clone every script has the clone's time, later than the bundled outputs (unpack keeps their
# times), so Snakemake (9.27) would plan every training job again though no code changed. The manifest answers that
# question for all the bundled files at once (the commit, against this checkout's; the config, used as is; every
# file's checksum), so the route leaves `code` out and keeps the rest: an input newer than its output still reruns.
ROUTE_TRIGGERS = ("mtime", "params", "input", "software-env")
# gzip header: deflate, a comment follows (FCOMMENT), no mtime, best compression, OS unknown; then the seal's comment
GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0x10, 0, 0, 0, 0, 2, 255])
SEAL = b"covbench bundle sha256="
_READ_ERRORS = (EOFError, tarfile.TarError, zlib.error, OSError)


class BundleError(ValueError):
    pass


def training_records(training_rules: list[str], root: Path = Path(".")) -> list[str]:
    """The log and benchmark files the training rules left (results/{logs,benchmarks}/<rule>/...)."""
    return sorted(
        str(path.relative_to(root))
        for directory in RECORD_DIRS
        for rule in training_rules
        for path in (root / directory / rule).rglob("*")
        if path.is_file()
    )


def git_commit(root: Path = Path(".")) -> dict:
    """{"commit": HEAD or None outside a git checkout, "dirty": whether tracked files differ from it}."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def package_versions() -> dict[str, str]:
    """Every installed distribution of this interpreter, name -> version, and Python itself."""
    versions = {
        dist.metadata["Name"]: dist.version for dist in importlib.metadata.distributions() if dist.metadata["Name"]
    }
    return {"python": platform.python_version(), **dict(sorted(versions.items(), key=lambda kv: kv[0].lower()))}


def make_manifest(files: list[str], config: dict, training_rules: list[str], root: Path = Path(".")) -> dict:
    return {
        "format": 1,
        **git_commit(root),
        "platform": platform.platform(),
        "training_rules": list(training_rules),
        "config": config,
        "packages": package_versions(),
        "files": {path: {"sha256": sha256_of(root / path), "size": (root / path).stat().st_size} for path in files},
    }


def write_bundle(
    inputs: list[str], out_path: str, config: dict, training_rules: list[str], root: str | Path = "."
) -> dict:
    """Archive `inputs` (paths relative to root, under results/) and the training rules' logs and benchmarks behind
    a manifest; written beside, then renamed. -> the manifest."""
    root = Path(root)
    files = sorted(set(inputs) | set(training_records(training_rules, root)))
    manifest = make_manifest(files, config, training_rules, root)
    data = json.dumps(manifest, indent=1, default=str).encode()
    partial = Path(root / out_path).with_name(Path(out_path).name + ".part")
    partial.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "w+b") as out:
        sealed = _SealedGzip(out)
        with tarfile.open(fileobj=sealed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(data), int(os.path.getmtime(root / files[0])) if files else 0
            tar.addfile(info, io.BytesIO(data))
            for path in files:
                tar.add(root / path, arcname=path, recursive=False)
        sealed.seal()
    os.replace(partial, root / out_path)
    return manifest


class _SealedGzip(io.RawIOBase):
    """A gzip file whose header comment holds the SHA256 of every other byte of it (SEAL): the manifest covers the
    files' contents, the seal the rest (tar headers and padding, the manifest itself, the compressed stream), so
    no byte of a bundle can change unnoticed. gzip, tar and Python read it as any .tar.gz."""

    def __init__(self, out):
        self.out, self.crc, self.size = out, 0, 0
        self.compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.digest = hashlib.sha256(GZIP_HEADER)
        out.write(GZIP_HEADER + SEAL + b"0" * 64 + b"\0")  # the digest is written over the zeros at the end

    def writable(self):
        return True

    def write(self, data):
        self.crc, self.size = zlib.crc32(data, self.crc), self.size + len(data)
        self._emit(self.compressor.compress(data))
        return len(data)

    def _emit(self, compressed):
        self.digest.update(compressed)
        self.out.write(compressed)

    def seal(self):
        self._emit(self.compressor.flush() + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF))
        self.out.seek(len(GZIP_HEADER) + len(SEAL))
        self.out.write(self.digest.hexdigest().encode())


def check_seal(archive: str | Path) -> None:
    """The archive's bytes against the SHA256 in its gzip header (_SealedGzip)."""
    with open(archive, "rb") as f:
        head = f.read(len(GZIP_HEADER) + len(SEAL) + 65)
        if head[: len(GZIP_HEADER)] != GZIP_HEADER or head[len(GZIP_HEADER) : -65] != SEAL or head[-1:] != b"\0":
            raise BundleError(
                f"bundle error: checksum of {archive} fails: its gzip header does not hold the checksum "
                "`make bundle` writes there (changed, or not a bundle); nothing unpacked"
            )
        expected = head[-65:-1].decode("ascii", errors="replace")
        digest = hashlib.sha256(GZIP_HEADER)
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise BundleError(
            f"bundle error: checksum of {archive} fails (header {expected[:12]}, archive "
            f"{digest.hexdigest()[:12]}): bytes outside the files' contents changed; nothing unpacked"
        )


def _safe(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and path.parts[:1] == ("results",)


def _reason(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _stream(archive: str | Path, destination_of=None):
    """(member, SHA256 of its content, the content when it is the manifest) in archive order, read as one stream;
    with destination_of(member) -> a path, each file's content is also written there. A read error (a truncated
    or corrupt archive) names the member being read."""
    try:
        tar = tarfile.open(archive, "r|gz")
    except _READ_ERRORS as error:
        raise BundleError(
            f"bundle error: {archive} is not a readable .tar.gz ({_reason(error)}); nothing unpacked"
        ) from error
    name = MANIFEST
    with tar:
        try:
            for member in tar:
                name = member.name
                f = tar.extractfile(member) if member.isfile() else None
                if f is None or member.name == MANIFEST:
                    content = f.read() if f is not None else None
                    yield member, content and hashlib.sha256(content).hexdigest(), content
                    continue
                destination = destination_of(member) if destination_of is not None else None
                if destination is None:
                    digest = _hash_stream(f)
                else:
                    with open(destination, "wb") as out:
                        digest = _hash_stream(f, out)
                yield member, digest, None
                name = f"the archive after {member.name}"
        except _READ_ERRORS as error:
            raise BundleError(
                f"bundle error: checksum of {name} fails: the archive is truncated or corrupt "
                f"({_reason(error)}); nothing unpacked"
            ) from None


def _hash_stream(f, sink=None) -> str:
    digest = hashlib.sha256()
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
    return digest.hexdigest()


def verify(archive: str | Path) -> dict:
    """Check every member of the archive against its manifest, writing nothing. -> the manifest.
    Raises BundleError (one line naming the file) on a checksum that fails, a member missing or not in the
    manifest, a path outside results/, or an archive that ends early."""
    manifest, seen = None, set()
    for member, digest, content in _stream(archive):
        if manifest is None:
            if member.name != MANIFEST or content is None:
                raise BundleError(f"bundle error: {archive} does not start with {MANIFEST}; nothing unpacked")
            try:
                manifest = json.loads(content)
            except ValueError as error:
                raise BundleError(
                    f"bundle error: checksum of {MANIFEST} fails: it is not JSON ({_reason(error)}); nothing unpacked"
                ) from None
            continue
        expected = manifest["files"].get(member.name)
        if expected is None or digest is None or not _safe(member.name):
            raise BundleError(f"bundle error: {member.name} is not a file of the manifest; nothing unpacked")
        if digest != expected["sha256"]:
            raise BundleError(
                f"bundle error: checksum of {member.name} fails (manifest {expected['sha256'][:12]}, "
                f"archive {digest[:12]}); nothing unpacked"
            )
        seen.add(member.name)
    if manifest is None:
        raise BundleError(f"bundle error: {archive} is empty; nothing unpacked")
    missing = sorted(set(manifest["files"]) - seen)
    if missing:
        raise BundleError(
            f"bundle error: checksum of {missing[0]} fails: it is missing from the archive "
            f"({len(missing)} files missing); nothing unpacked"
        )
    check_seal(archive)  # the files are intact: is anything else changed (the manifest, headers, padding)?
    return manifest


def unpack(archive: str | Path, root: str | Path = ".") -> dict:
    """verify, then write every file under root (keeping its modification time, so the order in which training
    made them stays) and the bundle's config to CONFIG_PATH. A file already there must equal the bundle's copy:
    results of another build are never overwritten. -> the manifest."""
    root = Path(root)
    manifest = verify(archive)
    for path, expected in manifest["files"].items():
        if (root / path).exists() and sha256_of(root / path) != expected["sha256"]:
            raise BundleError(
                f"bundle error: {path} exists and differs from the bundle's copy; move results/ "
                "away to use the bundle; nothing unpacked"
            )

    def partial_of(member):
        destination = root / member.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        return destination.with_name(destination.name + ".part")

    for member, digest, _ in _stream(archive, partial_of):
        if member.name == MANIFEST:
            continue
        partial = partial_of(member)
        if digest != manifest["files"][member.name]["sha256"]:  # the archive changed since it was verified
            partial.unlink()
            raise BundleError(f"bundle error: checksum of {member.name} fails while unpacking")
        os.utime(partial, (member.mtime, member.mtime))
        os.replace(partial, root / member.name)
    atomic.write_text(root / CONFIG_PATH, yaml.safe_dump(manifest["config"], sort_keys=False))
    atomic.write_json(root / MANIFEST_COPY, manifest, indent=1)
    return manifest


def route_command(cores: str, extra: list[str] = ()) -> list[str]:
    """The snakemake command of the route: ROUTE_TRIGGERS and the bundle's config (in its one-value form, so that
    targets in `extra` are not read as more config files)."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(cores),
        "--rerun-triggers",
        *ROUTE_TRIGGERS,
        f"--configfile={CONFIG_PATH}",
        *extra,
    ]


def planned_jobs(root: str | Path = ".") -> dict[str, int]:
    """rule -> number of jobs the route's snakemake would run in root (its dry run)."""
    dry = subprocess.run([*route_command("1"), "-n", "--quiet", "rules"], cwd=root, capture_output=True, text=True)
    if dry.returncode != 0:
        last = (dry.stderr.strip().splitlines() or ["no output"])[-1]
        raise BundleError(f"bundle error: snakemake -n with {CONFIG_PATH} failed: {last}")
    return job_stats(dry.stdout)


def job_stats(output: str) -> dict[str, int]:
    """rule -> count from the "Job stats:" table snakemake prints before it runs (empty: nothing to be done)."""
    table = output.split("Job stats:")[1].split("total")[0] if "Job stats:" in output else ""
    return {rule: int(count) for rule, count in re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.M)}


def check_no_training(root: str | Path, manifest: dict) -> dict[str, int]:
    """Stop when the unpacked bundle still leaves a training (or data) job to snakemake. -> the planned jobs."""
    planned = planned_jobs(root)
    training = {rule: n for rule, n in planned.items() if rule in (*manifest["training_rules"], *DATA_RULES)}
    if training:
        jobs = ", ".join(f"{rule} ({n})" for rule, n in training.items())
        raise BundleError(
            f"bundle error: with the bundle unpacked snakemake would still run {jobs}: the bundle was "
            "made with another config or code; nothing was run"
        )
    return planned


def version_differences(bundled: dict[str, str], installed: dict[str, str]) -> list[str]:
    """'name installed (bundle v)' for every package whose version differs from the bundle's, or is missing here."""
    return [
        f"{name} {installed.get(name, 'not installed')} (bundle {version})"
        for name, version in bundled.items()
        if installed.get(name) != version
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m covbench.tools.bundle", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "action",
        choices=["verify", "unpack", "rebuild"],
        help="verify: check only; unpack: check, "
        "unpack into the working directory, and check that snakemake plans no training job; rebuild: "
        "unpack, then run that snakemake (make all BUNDLE=...)",
    )
    parser.add_argument("archive")
    parser.add_argument("--cores", default="all", help="rebuild: snakemake's --cores")
    parser.add_argument("snakemake_args", nargs=argparse.REMAINDER, help="rebuild: passed on to snakemake")
    args = parser.parse_args(argv)
    try:
        manifest = verify(args.archive) if args.action == "verify" else unpack(args.archive)
        commit = git_commit()["commit"]
        print(
            f"{args.archive}: {len(manifest['files'])} files verified (commit {manifest['commit']}"
            f"{', with uncommitted changes' if manifest['dirty'] else ''})"
        )
        if manifest["commit"] and commit and commit != manifest["commit"]:
            print(
                f"note: this checkout is at {commit}, the bundle was made at {manifest['commit']}: figures and "
                "tables come from this checkout's code"
            )
        if args.action != "verify":
            differ = version_differences(manifest["packages"], package_versions())
            if differ:
                print(
                    f"warning: installed packages differ from the bundle's ({len(differ)}): {', '.join(differ)}",
                    file=sys.stderr,
                )
            planned = check_no_training(".", manifest)
            print(
                f"unpacked into results/; config {CONFIG_PATH}; snakemake will run "
                + (", ".join(f"{rule} ({n})" for rule, n in planned.items()) or "nothing")
            )
    except BundleError as error:
        print(error, file=sys.stderr)
        return 1
    if args.action == "rebuild":
        return subprocess.run(route_command(args.cores, args.snakemake_args)).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
