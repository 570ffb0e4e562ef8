"""Getting the Omniglot archives: download, verify, copy from a local folder, unzip.

The official archives live in the ``python/`` folder of github.com/brendenlake/omniglot.
A download is written to ``<name>.part`` and renamed to ``<name>`` only after its size and
MD5 match the table below, so the data folder never holds a file a later run would trust
wrongly: a failed, interrupted or corrupted transfer leaves nothing behind, and running the
command again simply retries.

A local copy (``copy_archives``) is checked by content instead of by checksum: a zip that
opens, passes every member's CRC-32 and holds the expected number of images is accepted
even when it was re-packed (and so has other bytes than the official file).

tinysiamese reads the zips directly; :func:`extract_archive` exists for people who want
to browse the images, and refuses member names that would write outside its target.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .archive import DataError, open_zip, unreadable_zip

OFFICIAL_URL = "https://github.com/brendenlake/omniglot/raw/master/python"


@dataclass(frozen=True)
class ArchiveSpec:
    """What one official archive must be: its file name, size, MD5 and image count."""

    name: str
    size: int      # bytes
    md5: str
    n_images: int  # PNG members: the content check for local copies
    remote: str = ""  # its path below the base URL, when that is not ``name``


OFFICIAL_ARCHIVES = (
    ArchiveSpec("images_background.zip", 9_464_212, "68d2efa1b9178cc56df9314c21c6e718", 19_280),
    ArchiveSpec("images_evaluation.zip", 6_462_886, "6b91aef0f799c5bb55b94e3f2daec811", 13_180),
)
# Lake's official one-shot runs, for `tinysiamese eval --runs`, kept beside the archives as
# all_runs.zip. Its 800 images (20 runs of 20 training + 20 test images) are counted from the
# runs' layout; size and MD5 are the official file's.
LAKE_RUNS = ArchiveSpec("all_runs.zip", 352_787, "e8996daecdf12afeeb4a53a179f06b19", 800,
                        remote="one-shot-classification/all_runs.zip")
RUNS_ARCHIVES = (LAKE_RUNS,)  # what `data download` fetches after OFFICIAL_ARCHIVES
# The official "minimal" splits (5 background alphabets each): small, for tests and demos.
SMALL_ARCHIVES = (
    ArchiveSpec("images_background_small1.zip", 1_319_022, "e704a628b5459e08445c13499850abc4",
                2_720),
    ArchiveSpec("images_background_small2.zip", 1_580_917, "b75a71a51d3b13f821f212756fe481fd",
                3_120),
)


@dataclass(frozen=True)
class FetchResult:
    """What happened to one archive: "downloaded", "copied" or "present" (already verified)."""

    name: str
    path: Path
    status: str


def base_url(url: str | None = None) -> str:
    """``url`` > ``$TINYSIAMESE_OMNIGLOT_URL`` (a mirror, or a test server) > the official one."""
    return (url or os.environ.get("TINYSIAMESE_OMNIGLOT_URL") or OFFICIAL_URL).rstrip("/")


def file_md5(path: str | os.PathLike) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_checksum(path: str | os.PathLike, spec: ArchiveSpec) -> None:
    """Raise DataError unless ``path`` has exactly the official size and MD5."""
    size = os.path.getsize(path)
    if size != spec.size:
        raise DataError(f"{path} has {size:,} bytes, expected {spec.size:,}")
    md5 = file_md5(path)
    if md5 != spec.md5:
        raise DataError(f"{path} has MD5 {md5}, expected {spec.md5}")


def check_contents(path: str | os.PathLike, spec: ArchiveSpec) -> None:
    """Raise DataError unless ``path`` is an intact zip holding ``spec.n_images`` images."""
    with open_zip(path) as zf:
        try:
            bad = zf.testzip()  # reads every member and checks its CRC-32
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise unreadable_zip(path, exc) from None
        names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]  # macOS debris
        n_images = sum(1 for n in names if n.endswith(".png"))
    if bad is not None:
        raise DataError(f"{path} is damaged: member {bad} fails its CRC check")
    if n_images != spec.n_images:
        raise DataError(f"{path} holds {n_images:,} images, expected {spec.n_images:,}")


def is_verified(path: Path, spec: ArchiveSpec) -> bool:
    """True when ``path`` is the official file or an intact copy with the same images."""
    if not path.is_file():
        return False
    try:
        check_checksum(path, spec)
        return True
    except DataError:
        pass
    try:
        check_contents(path, spec)
        return True
    except DataError:
        return False


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def download_archive(spec: ArchiveSpec, dest: str | os.PathLike, *, url: str | None = None,
                     timeout: float = 60.0) -> FetchResult:
    """Download ``<base url>/<spec.remote or spec.name>`` into ``dest / spec.name``, verified
    by size and MD5.

    Skips the download when ``dest`` already holds a verified copy. On any failure the
    partial ``.part`` file is deleted and DataError says to run the command again.
    """
    dest = Path(dest)
    target = dest / spec.name
    if is_verified(target, spec):
        return FetchResult(spec.name, target, "present")
    dest.mkdir(parents=True, exist_ok=True)
    source = f"{base_url(url)}/{spec.remote or spec.name}"
    part = dest / (spec.name + ".part")
    try:
        digest, n_bytes = hashlib.md5(), 0
        with urllib.request.urlopen(source, timeout=timeout) as response, open(part, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 16), b""):
                f.write(chunk)
                digest.update(chunk)
                n_bytes += len(chunk)
    except BaseException as exc:  # network errors come in many types; Ctrl-C must clean up too
        _remove(part)
        if not isinstance(exc, Exception):
            raise
        raise DataError(
            f"downloading {source} failed ({exc}); run the command again to retry"
        ) from None
    if n_bytes != spec.size or digest.hexdigest() != spec.md5:
        _remove(part)
        raise DataError(
            f"{source} gave {n_bytes:,} bytes with MD5 {digest.hexdigest()}, expected "
            f"{spec.size:,} bytes with MD5 {spec.md5}; nothing was kept - run the command "
            "again to retry"
        )
    os.replace(part, target)
    return FetchResult(spec.name, target, "downloaded")


def download_archives(dest: str | os.PathLike, archives=OFFICIAL_ARCHIVES, *,
                      url: str | None = None, timeout: float = 60.0) -> list[FetchResult]:
    """Download every archive of ``archives`` into ``dest`` (see :func:`download_archive`)."""
    return [download_archive(spec, dest, url=url, timeout=timeout) for spec in archives]


def copy_archives(source: str | os.PathLike, dest: str | os.PathLike,
                  archives=OFFICIAL_ARCHIVES) -> list[FetchResult]:
    """Copy local archives from the folder ``source`` into ``dest``, checking each first.

    A file is accepted when it has the official MD5 or, failing that, when its contents
    check out (see :func:`check_contents`). Raises FileNotFoundError for a missing file.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_dir():
        raise FileNotFoundError(
            f"{source} is not a folder; pass the folder holding the Omniglot zips"
        )
    results = []
    for spec in archives:
        src = source / spec.name
        if not src.is_file():
            hint, unzipped = "", spec.name.removesuffix(".zip")
            if (source / unzipped).is_dir():
                hint = f"; it holds the unzipped {unzipped}/, which --data {source} reads as is"
            raise FileNotFoundError(f"{source} has no {spec.name}{hint}")
        if not is_verified(src, spec):
            check_contents(src, spec)  # raises DataError with the reason
        target = dest / spec.name
        if target.exists() and target.resolve() == src.resolve():
            results.append(FetchResult(spec.name, target, "present"))
            continue
        if is_verified(target, spec):
            results.append(FetchResult(spec.name, target, "present"))
            continue
        dest.mkdir(parents=True, exist_ok=True)
        part = dest / (spec.name + ".part")
        try:
            shutil.copyfile(src, part)
            os.replace(part, target)
        except BaseException:
            _remove(part)
            raise
        results.append(FetchResult(spec.name, target, "copied"))
    return results


def _check_member_name(name: str) -> None:
    """Refuse a zip member that would land outside the extraction folder."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise DataError(
            f"refusing to extract unsafe member {name!r}: it points outside the target folder"
        )


def extract_archive(zip_path: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Unzip ``zip_path`` into ``dest``; returns the top-level paths created.

    Every member name is checked before anything is written; members are extracted into a
    hidden temporary folder inside ``dest`` and moved into place only when all succeeded.
    Raises DataError for unsafe names or when a top-level folder already exists.
    """
    dest = Path(dest)
    with open_zip(zip_path) as zf:
        infos = zf.infolist()
        for info in infos:
            _check_member_name(info.filename)
        tops = sorted({PurePosixPath(i.filename).parts[0] for i in infos if i.filename.strip("/")})
        for top in tops:
            if (dest / top).exists():
                raise DataError(
                    f"{dest / top} already exists; remove it to extract {zip_path} again"
                )
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract-"))
        try:
            for info in infos:
                target = tmp / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            for top in tops:
                os.replace(tmp / top, dest / top)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [dest / top for top in tops]
