"""archive: one reader for a zip or its unzipped folder, with the same listing and errors."""
import zipfile

import pytest
from tinysiamese.archive import DataError, fingerprint, open_tree, open_zip

FILES = {"top/a/b.png": b"png", "top/a/c/d.txt": b"deep", "top/e.txt": b"e", "__MACOSX/x": b"junk"}


def _zip(path, files=FILES):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _folder(root, files=FILES):
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "top" / ".hidden").write_bytes(b"")
    return root


def test_zip_and_folder_list_and_read_alike(tmp_path):
    with open_tree(_zip(tmp_path / "t.zip"), "top/") as (members, read):
        in_zip = sorted(m for m in members if not m.endswith("/"))
        assert read("a/c/d.txt") == b"deep"
    with open_tree(_folder(tmp_path / "f") / "top") as (members, read):
        in_folder = sorted(m for m in members if not m.endswith("/"))
        assert "a/" in members and "a/c/" in members, members
        assert read("a/c/d.txt") == b"deep"
    assert in_zip == in_folder == ["a/b.png", "a/c/d.txt", "e.txt"]  # no __MACOSX, no .hidden


def test_max_depth_lists_less_of_a_folder_but_reads_everything(tmp_path):
    with open_tree(_folder(tmp_path / "f") / "top", max_depth=2) as (members, read):
        assert "a/c/d.txt" not in members and "a/b.png" in members, members
        assert read("a/c/d.txt") == b"deep"


@pytest.mark.parametrize("as_zip", [True, False])
def test_a_missing_member_is_a_data_error_naming_it(tmp_path, as_zip):
    path = _zip(tmp_path / "t.zip") if as_zip else _folder(tmp_path / "f") / "top"
    with open_tree(path, "top/" if as_zip else "") as (_, read):
        with pytest.raises(DataError, match="nothing.png"):
            read("a/nothing.png")


def test_unreadable_zip_and_missing_path(tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    for opener in (open_zip, fingerprint, lambda p: open_tree(p).__enter__()):
        with pytest.raises(DataError, match="bad.zip is not a readable zip archive.*download it"):
            opener(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_tree(tmp_path / "nowhere").__enter__()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fingerprint(tmp_path / "nowhere")


def test_a_zip_fingerprint_is_its_contents(tmp_path):
    path = _zip(tmp_path / "one.zip")
    copy = tmp_path / "copy.zip"
    copy.write_bytes(path.read_bytes())  # another file, another time: the same members
    assert fingerprint(copy) == fingerprint(path)
    _zip(path, {**FILES, "top/e.txt": b"E"})  # same size, another CRC
    assert fingerprint(path) != fingerprint(copy)


def test_a_folder_fingerprint_changes_with_a_file(tmp_path):
    top = _folder(tmp_path / "f") / "top"
    before = fingerprint(top)
    assert fingerprint(top) == before
    (top / "e.txt").write_bytes(b"longer now")
    assert fingerprint(top) != before
