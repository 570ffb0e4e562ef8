"""Shared fixtures for the data tests: the real data (skipped when absent) and fakes.

Real data is looked up in ``$TINYSIAMESE_TEST_DATA``, else ``<repo>/../shared/data``.
The fake Omniglot images carry their own identity: row 0 spells the character number and
row 1 the drawer number in binary, so a test can tell which image ended up where.
"""
from __future__ import annotations

import http.server
import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reference import BACKEND_PARAMS, backend_or_skip
from tinysiamese import characters, omniglot, pixels

REPO = Path(__file__).resolve().parents[1]


def _real_data_dir() -> Path:
    return Path(os.environ.get("TINYSIAMESE_TEST_DATA") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with the real data sets (omniglot/, mnist/); skips the test if absent."""
    path = _real_data_dir()
    if not (path / "omniglot" / "images_background.zip").is_file():
        pytest.skip(f"real data not found in {path} (set TINYSIAMESE_TEST_DATA)")
    return path


@pytest.fixture(scope="session")
def omniglot_dir(data_dir) -> Path:
    return data_dir / "omniglot"


@pytest.fixture(scope="session")
def mnist_dir(data_dir) -> Path:
    path = data_dir / "mnist"
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {path}")
    return path


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """One cache folder for the whole session, so real splits are decoded only once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def real_evaluation(omniglot_dir, session_cache) -> characters.CharacterSet:
    return omniglot.load_split(omniglot_dir, "evaluation", cache_dir=session_cache)


@pytest.fixture(scope="session")
def real_background(omniglot_dir, session_cache) -> characters.CharacterSet:
    return omniglot.load_split(omniglot_dir, "background", cache_dir=session_cache)


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """Each test once on NumPy and once on CuPy (marked gpu; skipped, with the reason, where
    CuPy or a CUDA device is missing). A test file may override it (test_ops: float64)."""
    return backend_or_skip(request.param)


@pytest.fixture
def cupy_backend():
    """The CuPy backend, for CPU/GPU parity tests; skipped where there is none."""
    return backend_or_skip("cupy")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads or writes the user's ~/.cache or follows their environment."""
    for var in ("TINYSIAMESE_DATA", "TINYSIAMESE_OMNIGLOT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TINYSIAMESE_CACHE", str(tmp_path_factory.getbasetemp() / "default-cache"))


# --------------------------------------------------------------------------------------
# A local web server


class LocalServer:
    """An HTTP server on 127.0.0.1 serving ``files``; names in ``truncate`` stop halfway."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []  # the file names asked for
        self.paths: list[str] = []     # the whole paths, in order
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append(name)
                server.paths.append(self.path)
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if name in server.truncate:  # promise everything, send half, hang up
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/python"
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    """A LocalServer for the test; set ``server.files[name] = bytes`` to serve a file."""
    s = LocalServer()
    yield s
    s.close()


# --------------------------------------------------------------------------------------
# Fake Omniglot


def fake_strokes(char: int, drawer: int, size: int = 105) -> np.ndarray:
    """(size, size) bool: a character-specific bar, nudged by the drawer, plus two ID rows."""
    ink = np.zeros((size, size), dtype=bool)
    top = 10 + (char * 7) % (size - 40)
    left = 10 + (char * 13) % (size - 40) + drawer % 3
    ink[top:top + 20, left:left + 4] = True
    ink[top + 8:top + 11, left:left + 15] = True
    ink[0, :16] = [(char >> bit) & 1 for bit in range(16)]
    ink[1, :8] = [(drawer >> bit) & 1 for bit in range(8)]
    return ink


def read_ids(image: np.ndarray) -> tuple[int, int]:
    """(H, W) image with ink > 0 -> (char, drawer) spelled by fake_strokes."""
    bits = np.asarray(image) > 0
    char = sum(int(b) << i for i, b in enumerate(bits[0, :16]))
    drawer = sum(int(b) << i for i, b in enumerate(bits[1, :8]))
    return char, drawer


def png_bytes(strokes: np.ndarray) -> bytes:
    """bool strokes -> 1-bit PNG, black ink on white like Omniglot."""
    buf = io.BytesIO()
    Image.fromarray(~strokes).save(buf, format="PNG")
    return buf.getvalue()


def write_fake_split(root: Path, split: str, alphabets: dict[str, int], *, as_zip: bool = True,
                     n_drawers: int = 20, first_char: int = 1) -> Path:
    """Write ``images_<split>`` (zip or folder) with ``alphabets = {name: n_characters}``.

    Character numbers run on from ``first_char`` across alphabets (like Omniglot's NNNN).
    Returns the zip or folder path.
    """
    root.mkdir(parents=True, exist_ok=True)
    top = f"images_{split}"
    files: dict[str, bytes] = {}
    char = first_char
    for alphabet, n_chars in alphabets.items():
        files[f"{top}/{alphabet}/"] = b""
        for c in range(1, n_chars + 1):
            files[f"{top}/{alphabet}/character{c:02d}/"] = b""
            for d in range(1, n_drawers + 1):
                name = f"{top}/{alphabet}/character{c:02d}/{char:04d}_{d:02d}.png"
                files[name] = png_bytes(fake_strokes(char, d))
            char += 1
    if as_zip:
        path = root / f"{top}.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                if name.endswith("/"):
                    zf.writestr(name, b"")
                else:
                    zf.writestr(name, data)
        return path
    for name, data in files.items():
        target = root / name
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.write_bytes(data)
    return root / top


@pytest.fixture
def fake_omniglot(tmp_path):
    """Factory: fake_omniglot(split="background", alphabets={...}, as_zip=True) -> data root."""
    def build(split: str = "background", alphabets: dict[str, int] | None = None, *,
              as_zip: bool = True, root: Path | None = None, **kwargs) -> Path:
        root = root or tmp_path / "omniglot"
        write_fake_split(root, split, alphabets or {"Alpha": 3, "Beta": 2}, as_zip=as_zip, **kwargs)
        return root
    return build


@pytest.fixture(scope="session")
def fake_paper_root(tmp_path_factory) -> Path:
    """A fake data root with the paper's alphabet names: 3 background alphabets of 4
    characters, and all 20 evaluation alphabets with 3 characters each."""
    root = tmp_path_factory.mktemp("fake-paper")
    write_fake_split(root, "background", {"Aa": 4, "Bb": 4, "Cc": 4})
    names = sorted(characters.VAL_ALPHABETS + characters.TEST_ALPHABETS)
    write_fake_split(root, "evaluation", {name: 3 for name in names}, first_char=100)
    return root


@pytest.fixture(scope="session")
def paper20(tmp_path_factory) -> Path:
    """Fake Omniglot for training runs: 3 background alphabets of 4 characters; the paper's
    validation alphabets with 20 characters each (20-way trials need them), its test
    alphabets with 1."""
    root = tmp_path_factory.mktemp("paper20")
    write_fake_split(root, "background", {"Aa": 4, "Bb": 4, "Cc": 4})
    alphabets = {name: 20 for name in characters.VAL_ALPHABETS}
    alphabets.update({name: 1 for name in characters.TEST_ALPHABETS})
    write_fake_split(root, "evaluation", alphabets, first_char=100)
    return root


def fake_subset(alphabet_sizes=(3, 5, 4), n_drawers: int = 4,
                size: int = 12) -> characters.CharacterSet:
    """An in-memory subset whose pixel [0, 0] is the character + 1 and [0, 1] the drawer + 1."""
    n_chars = sum(alphabet_sizes)
    images = np.zeros((n_chars, n_drawers, size, size), dtype=np.uint8)
    images[:, :, 0, 0] = np.arange(1, n_chars + 1)[:, None]
    images[:, :, 0, 1] = np.arange(1, n_drawers + 1)[None, :]
    images[:, :, 4:8, 4:8] = pixels.INK  # some ink in the middle
    alphabet_of = np.repeat(np.arange(len(alphabet_sizes)), alphabet_sizes)
    names = [f"A{a}" for a in range(len(alphabet_sizes))]
    return characters.CharacterSet(
        name="fake", images=images, alphabets=names,
        characters=[f"{names[a]}/character{i:02d}" for i, a in enumerate(alphabet_of)],
        alphabet_of=alphabet_of.astype(np.int64), drawers=tuple(range(1, n_drawers + 1)),
    )


def subset_ids(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, [1,] H, W) float images of fake_subset -> (character, drawer) per image, 0-based."""
    x = np.asarray(x).reshape(len(x), *np.asarray(x).shape[-2:])
    return (np.rint(x[:, 0, 0] * 255).astype(int) - 1, np.rint(x[:, 0, 1] * 255).astype(int) - 1)


def write_lake_runs(root, n_runs=2, n_way=3, as_zip=False, prefix="all_runs"):
    """Lake's layout: runNN/{training/classMM.png, test/itemKK.png, class_labels.txt}.

    Test item k of run r is character 10*r + perm[k], and class m is 10*r + m, so the
    answer of item k is class perm[k]. Returns {run: perm}.
    """
    files, perms = {}, {}
    for r in range(1, n_runs + 1):
        run = f"run{r:02d}"
        perm = np.random.default_rng(r).permutation(n_way)
        perms[run] = perm
        lines = []
        for m in range(n_way):
            files[f"{run}/training/class{m + 1:02d}.png"] = png_bytes(fake_strokes(10 * r + m, 1))
        for k in range(n_way):
            files[f"{run}/test/item{k + 1:02d}.png"] = png_bytes(fake_strokes(10 * r + perm[k], 2))
            item = f"{run}/test/item{k + 1:02d}.png"
            lines.append(f"{item} {run}/training/class{perm[k] + 1:02d}.png")
        # Lines in reverse order: the loader must not rely on their order.
        files[f"{run}/class_labels.txt"] = ("\n".join(lines[::-1]) + "\n").encode()
    if as_zip:
        path = root / "all_runs.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(f"{prefix}/{name}" if prefix else name, data)
        return path, perms
    base = root / prefix if prefix else root
    for name, data in files.items():
        (base / name).parent.mkdir(parents=True, exist_ok=True)
        (base / name).write_bytes(data)
    return root, perms
