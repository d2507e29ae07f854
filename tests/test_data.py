"""Data sources: protocol arrays reproduced exactly, real file formats parsed, downloads tested on 127.0.0.1."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from actlab import data
from actlab.data import images
from actlab.data.download import fetch
from actlab.errors import ActlabError

# ------------------------------------------------------------------------------------ the protocols


def test_moons_equals_the_protocol_arrays():
    x, y = make_moons(n_samples=400, noise=0.18, random_state=42)
    x = StandardScaler().fit_transform(x)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=42)
    ds = data.load("moons")
    assert ds.task == "binary" and ds.input_shape == (2,) and ds.n_classes == 2
    np.testing.assert_array_equal(ds.x_train.numpy(), xtr.astype(np.float32))
    np.testing.assert_array_equal(ds.x_test.numpy(), xte.astype(np.float32))
    np.testing.assert_array_equal(ds.y_train.numpy(), ytr)
    np.testing.assert_array_equal(ds.y_test.numpy(), yte)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64


def test_blobs8_equals_the_original_generator_without_touching_global_state():
    state = np.random.get_state()
    ds = data.load("blobs8")
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    # The original: global seeding, then the draws, StandardScaler, the split.
    np.random.seed(42)
    x1 = np.random.randn(250, 8) + 2
    x0 = np.random.randn(250, 8) - 2
    x = StandardScaler().fit_transform(np.vstack([x1, x0]))
    y = np.hstack([np.ones(250), np.zeros(250)])
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=42)
    np.testing.assert_array_equal(ds.x_train.numpy(), xtr.astype(np.float32))
    np.testing.assert_array_equal(ds.x_test.numpy(), xte.astype(np.float32))
    np.testing.assert_array_equal(ds.y_train.numpy(), ytr)
    assert ds.x_train.shape == (400, 8) and ds.x_test.shape == (100, 8)


def test_mnist1d_matches_the_reference_package_and_published_shapes():
    mnist1d_ref = pytest.importorskip("mnist1d.data")
    ds = data.load("mnist1d")
    assert ds.x_train.shape == (4000, 1, 40) and ds.x_test.shape == (1000, 1, 40)
    counts = np.array(list(ds.class_counts("train").values())) + np.array(list(ds.class_counts("test").values()))
    assert counts.tolist() == [500] * 10  # 5000 samples, 500 per class
    ref = mnist1d_ref.make_dataset(mnist1d_ref.get_dataset_args())
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(ds.x_test[:, 0].numpy(), ref["x_test"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_train.numpy(), ref["y"])
    np.testing.assert_array_equal(ds.y_test.numpy(), ref["y_test"])


def test_digits_ships_with_sklearn():
    ds = data.load("digits")
    assert ds.input_shape == (1, 8, 8) and len(ds.x_train) + len(ds.x_test) == 1797
    assert float(ds.x_train.min()) == -1.0 and float(ds.x_train.max()) == 1.0  # [0, 16] -> "half" normalisation
    assert data.load("digits", normalize="unit").x_train.max() == 1.0


def test_xor_is_the_four_points():
    ds = data.load("xor")
    assert ds.x_train.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]] and ds.y_train.tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize("name", ["circles", "xor_noisy", "spirals", "gaussian"])
def test_playground_sets_are_deterministic_and_balanced(name):
    a, b = data.load(name, n=200, noise=0.2, seed=3), data.load(name, n=200, noise=0.2, seed=3)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, data.load(name, n=200, noise=0.2, seed=4).x_train)
    assert len(a.x_train) + len(a.x_test) == 200 and a.input_shape == (2,)
    assert abs(int(torch.cat([a.y_train, a.y_test]).sum()) - 100) <= 20


# ------------------------------------------------------------------------------------ shared options


def test_subsets_are_deterministic_and_recorded():
    a = data.load("digits", n_train=100, n_test=50)
    b = data.load("digits", n_train=100, n_test=50)
    assert torch.equal(a.x_train, b.x_train) and len(a.x_train) == 100 and len(a.x_test) == 50
    full = data.load("digits")
    rows = {tuple(r) for r in full.x_train.flatten(1).tolist()}
    assert all(tuple(r) in rows for r in a.x_train.flatten(1).tolist())  # a real subset of the train split
    assert a.provenance["options"] == {"n_train": 100, "n_test": 50, "subset_seed": 0}
    c = data.load("digits", n_train=100, subset_seed=1)
    assert not torch.equal(a.x_train, c.x_train)


def test_class_subset_relabels():
    full = data.load("digits")
    ds = data.load("digits", classes=[7, 3])
    assert ds.task == "binary" and ds.class_names == ("7", "3")
    np.testing.assert_array_equal(ds.x_train.numpy(), full.x_train[(full.y_train == 7) | (full.y_train == 3)].numpy())
    assert set(ds.y_train.tolist()) == {0, 1}
    assert torch.equal(ds.y_train == 0, full.y_train[(full.y_train == 7) | (full.y_train == 3)] == 7)


def test_downsample_averages_and_grayscale_uses_luma(tmp_path):
    ds = data.load("mnist1d", downsample=4)
    full = data.load("mnist1d")
    assert ds.input_shape == (1, 10)
    torch.testing.assert_close(ds.x_train[:, 0, 0], full.x_train[:, 0, :4].mean(-1))
    cif = _cifar_dataset(tmp_path, grayscale=True, downsample=2)
    assert cif.input_shape == (1, 16, 16)
    with pytest.raises(ActlabError, match="grayscale needs RGB images"):
        data.load("digits", grayscale=True)
    with pytest.raises(ActlabError, match="downsample=3 must divide the spatial size"):
        data.load("digits", downsample=3)


@pytest.mark.parametrize(("name", "opts", "message"), [
    ("moons", {"noise": -1}, "dataset moons: noise=-1: Input should be greater than or equal to 0"),
    ("moons", {"nosie": 0.1}, "unknown option 'nosie'; allowed: n, noise, seed"),
    ("moons", {"test_size": 1.5}, "test_size=1.5: Input should be less than 1"),
    ("digits", {"n_train": 10**6}, "n_train=1000000 is out of range; allowed: 1 to 1437"),
    ("digits", {"classes": [3]}, "classes=[3] is not allowed; give at least two distinct class indices from 0 to 9"),
    ("digits", {"normalize": "zscore"}, "normalize='zscore': Input should be 'half', 'unit' or 'standard'"),
    ("mnist1d", {"padding": [60, 36]}, "padding=[60, 36] must be [low, high] with low <= high"),
    ("mooons", {}, "dataset 'mooons' is unknown; did you mean moons?"),
])
def test_bad_options_are_named(name, opts, message):
    with pytest.raises(ActlabError) as e:
        data.load(name, **opts)
    assert message in str(e.value)


def test_names_are_forgiving():
    assert data.get_source("Fashion-MNIST").name == "fashion_mnist"
    assert data.get_source("MNIST1D").name == "mnist1d"


# ------------------------------------------------------------------- CIFAR-10 in its real format

CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar_tarball(path: Path, per_batch: int = 3, members: list[str] | None = None, seed: int = 0) -> dict:
    """A cifar-10-python.tar.gz with the official layout and pickles, holding a few random images."""
    rng = np.random.default_rng(seed)
    batches = {}
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        batches[name] = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, per_batch).tolist(),
                         b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                         b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
    batches["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR_LABELS], b"num_cases_per_batch": per_batch}
    with tarfile.open(path, "w:gz") as tar:
        for name, content in batches.items():
            if members is not None and name not in members:
                continue
            blob = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return batches


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cifar_dataset(tmp_path: Path, **opts):
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    tar = cache / "cifar-10-python.tar.gz"
    write_cifar_tarball(tar)
    return data.load("cifar10", cache_dir=str(cache), md5=_md5(tar), url="http://127.0.0.1:9/unused", **opts)


def test_cifar10_parses_the_official_layout(tmp_path):
    tar = tmp_path / "cifar-10-python.tar.gz"
    batches = write_cifar_tarball(tar)
    xtr, ytr, xte, yte, names = images.parse_cifar10(tar)
    assert xtr.dtype == np.uint8 and xtr.shape == (15, 3, 32, 32) and xte.shape == (3, 3, 32, 32)
    assert names == tuple(CIFAR_LABELS)
    # Row layout: 1024 red, then green, then blue values, each row-major 32×32.
    np.testing.assert_array_equal(xtr[0, 1].reshape(-1), batches["data_batch_1"][b"data"][0, 1024:2048])
    np.testing.assert_array_equal(xtr[3], batches["data_batch_2"][b"data"][0].reshape(3, 32, 32))
    assert ytr.tolist() == sum((batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)), [])


def test_cifar10_loader_uses_a_placed_file_offline_and_normalises(tmp_path):
    ds = _cifar_dataset(tmp_path)  # the URL is unreachable: the file in the cache is used as it is
    raw = images.parse_cifar10(tmp_path / "cache" / "cifar-10-python.tar.gz")[0]
    torch.testing.assert_close(ds.x_train, torch.tensor(raw, dtype=torch.float32) / 255 * 2 - 1)
    assert ds.class_names == tuple(CIFAR_LABELS)
    assert ds.provenance["md5"] == _md5(tmp_path / "cache" / "cifar-10-python.tar.gz")


def test_cifar10_placed_file_with_wrong_checksum(tmp_path):
    write_cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(ActlabError,
                       match=f"has MD5 .*, expected {images.CIFAR10_MD5}: it is corrupt or a different file"):
        data.load("cifar10", cache_dir=str(tmp_path))


@pytest.mark.parametrize(("damage", "message"), [
    ("truncate", "is not a readable gzip tar archive"),
    ("foreign", "is not a readable gzip tar archive"),
    ("missing", "has no cifar-10-batches-py/data_batch_3"),
    ("malicious", "cannot be read (refusing to load posix.system)"),
])
def test_cifar10_damaged_files(tmp_path, damage, message):
    tar = tmp_path / "cifar-10-python.tar.gz"
    if damage == "truncate":
        write_cifar_tarball(tar)
        tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    elif damage == "foreign":
        tar.write_bytes(b"<html>not found</html>")
    elif damage == "missing":
        write_cifar_tarball(tar, members=["data_batch_1", "data_batch_2"])
    else:
        import os

        class Evil:
            def __reduce__(self):
                return (os.system, ("echo pwned",))

        blob = pickle.dumps({b"data": Evil()})
        with tarfile.open(tar, "w:gz") as t:
            info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
    with pytest.raises(ActlabError) as e:
        images.parse_cifar10(tar)
    assert message in str(e.value)


# --------------------------------------------------------------- Fashion-MNIST idx files


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_fashion(folder: Path, n_train: int = 6, n_test: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test)}
    for name, arr in arrays.items():
        write_idx(folder / name, arr)
    return arrays


def test_idx_parsing_and_damage(tmp_path):
    arrays = write_fashion(tmp_path)
    got = images.parse_idx(tmp_path / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(got, arrays["train-images-idx3-ubyte.gz"])
    bad = tmp_path / "bad.gz"
    raw = gzip.decompress((tmp_path / "train-images-idx3-ubyte.gz").read_bytes())
    bad.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ActlabError, match="the file is truncated"):
        images.parse_idx(bad)
    bad.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]))
    with pytest.raises(ActlabError, match="not an idx file of unsigned bytes"):
        images.parse_idx(bad)
    bad.write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(ActlabError, match="cannot be read as gzip"):
        images.parse_idx(bad)


# --------------------------------------------------------------- downloads from 127.0.0.1


class _Server:
    """A local HTTP server: serves files from a folder; 'cut/NAME' announces the full size but sends half."""

    def __init__(self, root: Path):
        root_dir = root

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                cut = self.path.startswith("/cut/")
                path = root_dir / self.path.removeprefix("/cut/").lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if cut else body)
                self.wfile.flush()
                if cut:
                    self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    srv = _Server(root)
    yield srv, root
    srv.close()


def test_download_verifies_caches_and_then_works_offline(server, tmp_path):
    srv, root = server
    payload = np.random.default_rng(0).bytes(300_000)
    (root / "blob.bin").write_bytes(payload)
    md5 = hashlib.md5(payload).hexdigest()
    cache = tmp_path / "cache"
    path = fetch(srv.url + "blob.bin", "blob.bin", md5, cache, progress=True)
    assert path == cache / "blob.bin" and path.read_bytes() == payload
    assert list(cache.iterdir()) == [path]  # no .part left behind
    srv.close()  # offline now: the cached file is used
    assert fetch(srv.url + "blob.bin", "blob.bin", md5, cache) == path


def test_download_with_wrong_checksum_removes_the_partial_file(server, tmp_path):
    srv, root = server
    (root / "blob.bin").write_bytes(b"corrupted content")
    cache = tmp_path / "cache"
    with pytest.raises(ActlabError,
                       match="has MD5 .*, expected 0123456789abcdef0123456789abcdef; the partial file was removed"):
        fetch(srv.url + "blob.bin", "blob.bin", "0123456789abcdef0123456789abcdef", cache)
    assert list(cache.iterdir()) == []


def test_interrupted_download_leaves_nothing(server, tmp_path):
    srv, root = server
    (root / "blob.bin").write_bytes(b"x" * 200_000)
    cache = tmp_path / "cache"
    with pytest.raises(ActlabError) as e:
        fetch(srv.url + "cut/blob.bin", "blob.bin", hashlib.md5(b"x" * 200_000).hexdigest(), cache)
    assert "blob.bin" in str(e.value) and list(cache.iterdir()) == []


def test_unreachable_server_says_where_to_place_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTLAB_CACHE", str(tmp_path / "envcache"))
    with pytest.raises(ActlabError) as e:
        data.load("cifar10", url="http://127.0.0.1:9/cifar-10-python.tar.gz")
    msg = str(e.value)
    assert "could not download http://127.0.0.1:9/cifar-10-python.tar.gz" in msg
    assert f"Place the file cifar-10-python.tar.gz (MD5 {images.CIFAR10_MD5}) at {tmp_path / 'envcache'}" in msg


def test_missing_file_on_server(server, tmp_path):
    srv, _ = server
    with pytest.raises(ActlabError, match="could not download .*Not Found"):
        fetch(srv.url + "nothing.bin", "nothing.bin", "0" * 32, tmp_path)


def test_cifar10_end_to_end_through_http(server, tmp_path):
    srv, root = server
    write_cifar_tarball(root / "cifar-10-python.tar.gz", per_batch=2)
    md5 = _md5(root / "cifar-10-python.tar.gz")
    ds = data.load("cifar10", cache_dir=str(tmp_path / "c"), url=srv.url + "cifar-10-python.tar.gz", md5=md5)
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.x_test.shape == (2, 3, 32, 32)
    assert (tmp_path / "c" / "cifar-10-python.tar.gz").exists()


def test_fashion_mnist_end_to_end_through_http(server, tmp_path):
    srv, root = server
    arrays = write_fashion(root)
    md5s = {name: _md5(root / name) for name in arrays}
    ds = data.load("fashion_mnist", cache_dir=str(tmp_path / "c"), mirror=srv.url, md5s=md5s, normalize="unit")
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.class_names[9] == "Ankle boot"
    np.testing.assert_allclose(ds.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"] / 255, rtol=1e-6)
    assert ds.y_test.tolist() == arrays["t10k-labels-idx1-ubyte.gz"].tolist()
