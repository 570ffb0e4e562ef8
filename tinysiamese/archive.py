"""Reading a data set that comes as a ``.zip`` archive or as the folder it unzips to.

Omniglot's splits, Lake's one-shot runs and the downloaded archives are all read through
this module, so a zip and its unzipped folder give the same members and the same errors:

    open_zip(path)        a ``zipfile.ZipFile``, or DataError if it is not a readable zip
    open_tree(path, top)  (members, read) of a zip or a folder: the same listing either way
    fingerprint(path)     a digest that changes whenever the files change (for caches)

:class:`DataError` is the package's one error for data that is there but unusable; the
command line turns it into a one-line message and exit status 1.
"""
from __future__ import annotations

import hashlib
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path


class DataError(Exception):
    """The data is there but unusable: a corrupt image, a missing drawer, a bad archive."""


def open_zip(path: str | os.PathLike) -> zipfile.ZipFile:
    """Open the zip archive ``path``; DataError (one line, what to do) if it is unreadable."""
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise unreadable_zip(path, exc) from None


def unreadable_zip(path, exc: Exception) -> DataError:
    """The error for a zip whose directory or members cannot be read."""
    return DataError(f"{path} is not a readable zip archive ({exc}); download it again")


@contextmanager
def open_tree(path: str | os.PathLike, top: str = "", max_depth: int | None = None):
    """Yield ``(members, read)`` for the zip archive or folder ``path``.

    members: paths relative to the folder (or, in a zip, to its folder ``top``, e.g.
             "images_background/"), "/"-separated, folders ending in "/": "a/", "a/b.png".
             A zip lists only what lies under ``top`` (which skips e.g. ``__MACOSX/``); a
             folder leaves out hidden files and folders.
    read(member) -> the member's bytes; DataError naming it when it is absent.
    max_depth: list a folder's members at most this many levels down (None: all); ``read``
             still reaches deeper ones. Zips list everything: their listing is one read.
    """
    path = Path(path)
    if path.is_file():
        with open_zip(path) as zf:
            names = zf.namelist()
            members = [n[len(top):] for n in names if n.startswith(top) and n != top]

            def read_member(member: str) -> bytes:
                try:
                    return zf.read(top + member)
                except KeyError:
                    raise DataError(f"{path} has no {top + member}") from None

            yield members, read_member
    elif path.is_dir():
        members = []
        for dirpath, dirnames, filenames in os.walk(path):
            rel = Path(dirpath).relative_to(path).as_posix()
            depth = 0 if rel == "." else rel.count("/") + 1
            keep_going = max_depth is None or depth + 1 < max_depth
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if keep_going else []
            if rel != ".":
                members.append(rel + "/")
            prefix = "" if rel == "." else rel + "/"
            members.extend(prefix + f for f in sorted(filenames) if not f.startswith("."))

        def read_file(member: str) -> bytes:
            try:
                return (path / member).read_bytes()
            except FileNotFoundError:
                raise DataError(f"{path / member} does not exist") from None

        yield members, read_file
    else:
        raise FileNotFoundError(f"{path} does not exist")


def fingerprint(path: str | os.PathLike) -> str:
    """A digest that changes whenever the files of the zip or folder ``path`` change.

    For a zip: every member's name, size and CRC-32, read from the central directory (a
    content check that survives copying and touching the file). For a folder: every
    file's path, size and modification time.
    """
    path = Path(path)
    digest = hashlib.sha1()
    if path.is_file():
        with open_zip(path) as zf:
            for info in zf.infolist():
                digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
    elif path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames.sort()
            for name in sorted(filenames):
                st = os.stat(os.path.join(dirpath, name))
                rel = os.path.relpath(os.path.join(dirpath, name), path)
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    else:
        raise FileNotFoundError(f"{path} does not exist")
    return digest.hexdigest()
