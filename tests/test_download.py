import hashlib
import io
import zipfile

import pytest

from tinysiamese import download as dl
from tinysiamese.archive import DataError

SMALL1 = dl.SMALL_ARCHIVES[0]


@pytest.fixture(scope="session")
def small1_bytes(omniglot_dir):
    data = (omniglot_dir / SMALL1.name).read_bytes()
    assert hashlib.md5(data).hexdigest() == SMALL1.md5
    return data


def test_download_verifies_and_skips_present(server, small1_bytes, tmp_path):
    server.files[SMALL1.name] = small1_bytes
    [result] = dl.download_archives(tmp_path, [SMALL1], url=server.url)
    assert result.status == "downloaded" and result.path == tmp_path / SMALL1.name
    assert dl.file_md5(result.path) == SMALL1.md5
    assert sorted(p.name for p in tmp_path.iterdir()) == [SMALL1.name]
    [again] = dl.download_archives(tmp_path, [SMALL1], url=server.url)
    assert again.status == "present" and server.requests == [SMALL1.name]


def test_base_url_from_environment(server, small1_bytes, tmp_path, monkeypatch):
    server.files[SMALL1.name] = small1_bytes
    monkeypatch.setenv("TINYSIAMESE_OMNIGLOT_URL", server.url + "/")
    assert dl.base_url() == server.url and dl.base_url("http://x/y") == "http://x/y"
    assert dl.download_archive(SMALL1, tmp_path).status == "downloaded"


def test_corrupted_download_keeps_nothing(server, small1_bytes, tmp_path):
    corrupt = bytearray(small1_bytes)
    corrupt[len(corrupt) // 2] ^= 0xFF  # same size, other MD5
    server.files[SMALL1.name] = bytes(corrupt)
    with pytest.raises(DataError, match="MD5.*nothing was kept"):
        dl.download_archive(SMALL1, tmp_path, url=server.url)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_download_keeps_nothing_then_retry_works(server, small1_bytes, tmp_path):
    server.files[SMALL1.name] = small1_bytes
    server.truncate.add(SMALL1.name)
    with pytest.raises(DataError, match="run the command again"):
        dl.download_archive(SMALL1, tmp_path, url=server.url, timeout=10)
    assert list(tmp_path.iterdir()) == []
    server.truncate.clear()
    assert dl.download_archive(SMALL1, tmp_path, url=server.url).status == "downloaded"
    assert dl.file_md5(tmp_path / SMALL1.name) == SMALL1.md5


def test_missing_file_on_server(server, tmp_path):
    with pytest.raises(DataError, match="404"):
        dl.download_archive(SMALL1, tmp_path, url=server.url)
    assert list(tmp_path.iterdir()) == []


def test_bad_present_file_is_replaced(server, small1_bytes, tmp_path):
    server.files[SMALL1.name] = small1_bytes
    (tmp_path / SMALL1.name).write_bytes(small1_bytes[:1000])
    assert dl.download_archive(SMALL1, tmp_path, url=server.url).status == "downloaded"
    assert dl.file_md5(tmp_path / SMALL1.name) == SMALL1.md5


def test_checks_by_checksum_and_by_contents(small1_bytes, tmp_path):
    path = tmp_path / SMALL1.name
    path.write_bytes(small1_bytes)
    dl.check_checksum(path, SMALL1)
    dl.check_contents(path, SMALL1)
    # Re-packing changes the bytes but not the images: the content check still accepts it.
    repacked = tmp_path / "repacked.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(repacked, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    with pytest.raises(DataError, match="MD5|bytes"):
        dl.check_checksum(repacked, SMALL1)
    dl.check_contents(repacked, SMALL1)
    assert dl.is_verified(repacked, SMALL1)
    with pytest.raises(DataError, match="holds 2,720 images, expected 3,120"):
        dl.check_contents(path, dl.SMALL_ARCHIVES[1])


def test_copy_accepts_repacked_full_archives(omniglot_dir, tmp_path):
    results = dl.copy_archives(omniglot_dir, tmp_path)
    assert [r.status for r in results] == ["copied", "copied"]
    for spec in dl.OFFICIAL_ARCHIVES:
        assert (tmp_path / spec.name).stat().st_size == (omniglot_dir / spec.name).stat().st_size
    assert [r.status for r in dl.copy_archives(omniglot_dir, tmp_path)] == ["present", "present"]
    assert not list(tmp_path.glob("*.part"))


def test_copy_rejects_damaged_and_missing(small1_bytes, tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    damaged = bytearray(small1_bytes)
    # Flip a byte inside the first member's compressed data (after its 30-byte local header).
    with zipfile.ZipFile(io.BytesIO(small1_bytes)) as zf:
        first = next(i for i in zf.infolist() if i.filename.endswith(".png"))
    offset = first.header_offset + 30 + len(first.filename) + 40
    damaged[offset] ^= 0xFF
    (src / SMALL1.name).write_bytes(bytes(damaged))
    with pytest.raises(DataError, match="CRC|readable|damaged"):
        dl.copy_archives(src, dest, [SMALL1])
    assert not dest.exists() or list(dest.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="has no images_background_small2.zip"):
        dl.copy_archives(src, dest, [dl.SMALL_ARCHIVES[1]])
    with pytest.raises(FileNotFoundError, match="not a folder"):
        dl.copy_archives(tmp_path / "nowhere", dest, [SMALL1])


def _make_zip(path, names):
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name)  # ZipInfo keeps the name as given, '..' and all
            zf.writestr(info, b"payload")


@pytest.mark.parametrize("evil", ["../escape.txt", "/abs/escape.txt", "ok/../../escape.txt",
                                  "C:/escape.txt", "..\\escape.txt"])
def test_extract_refuses_unsafe_members(tmp_path, evil):
    archive = tmp_path / "evil.zip"
    _make_zip(archive, ["good/a.txt", evil])
    target = tmp_path / "target" / "inner"
    target.mkdir(parents=True)
    with pytest.raises(DataError, match="unsafe member"):
        dl.extract_archive(archive, target)
    assert list(target.iterdir()) == [], "nothing may be written, not even the safe members"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "target"]
    assert list((tmp_path / "target").iterdir()) == [target]


def test_extract_writes_all_or_nothing(tmp_path):
    archive = tmp_path / "ok.zip"
    _make_zip(archive, ["top/", "top/a/b.txt", "top/c.txt"])
    dest = tmp_path / "dest"
    assert dl.extract_archive(archive, dest) == [dest / "top"]
    assert (dest / "top" / "a" / "b.txt").read_bytes() == b"payload"
    assert sorted(p.name for p in dest.iterdir()) == ["top"], "no temporary folder left behind"
    with pytest.raises(DataError, match="already exists"):
        dl.extract_archive(archive, dest)
