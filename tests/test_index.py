import os

import faiss
import numpy as np
import pytest

from keras_mlh.codes import pack_codes
from keras_mlh.index import MISSING_DISTANCE, HammingIndex


def _codes(n, bits=32, seed=0):
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, bits)) > 0.5, 1, -1).astype(np.int8)


def _true_distances(queries, database):
    return (queries.shape[1] - queries.astype(int) @ database.astype(int).T) // 2


def test_flat_search_is_exact_and_returns_user_ids():
    db, queries = _codes(500), _codes(20, seed=1)
    ids = np.arange(500) * 7 + 1000
    index = HammingIndex(32)
    index.add(db, ids=ids)
    assert len(index) == 500
    distances, found = index.search(queries, k=10)
    assert distances.dtype == np.int32 and found.dtype == np.int64
    truth = np.sort(_true_distances(queries, db), axis=1)[:, :10]
    np.testing.assert_array_equal(distances, truth)
    positions = (found - 1000) // 7
    np.testing.assert_array_equal(
        np.take_along_axis(_true_distances(queries, db), positions, 1), distances
    )


def test_packed_input_and_default_ids_continue():
    index = HammingIndex(16)
    first = index.add(pack_codes(_codes(3, 16)))
    second = index.add(_codes(2, 16, seed=2))
    np.testing.assert_array_equal(first, [0, 1, 2])
    np.testing.assert_array_equal(second, [3, 4])
    np.testing.assert_array_equal(index.ids, [0, 1, 2, 3, 4])


def test_fewer_items_than_k():
    index = HammingIndex(8)
    index.add(_codes(2, 8))
    distances, ids = index.search(_codes(1, 8), k=4)
    assert list(ids[0, 2:]) == [-1, -1]
    assert list(distances[0, 2:]) == [MISSING_DISTANCE] * 2


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_range_search_is_inclusive(kind):
    db, queries = _codes(400, 16), _codes(5, 16, seed=3)
    index = HammingIndex(16, kind=kind, nlist=4, nprobe=4)
    index.add(db)
    truth = _true_distances(queries, db)
    for q, (distances, ids) in enumerate(index.range_search(queries, radius=5)):
        expected = np.flatnonzero(truth[q] <= 5)
        np.testing.assert_array_equal(np.sort(ids), expected)
        assert np.all(distances <= 5) and np.all(np.diff(distances) >= 0)


def test_approximate_kinds_find_exact_duplicates():
    db = _codes(2000, 64)
    for kind in ("hnsw", "ivf"):
        index = HammingIndex(64, kind=kind, nlist=16, nprobe=16)
        index.add(db, ids=np.arange(2000) + 5)
        distances, ids = index.search(db[:50], k=1)
        assert np.all(distances[:, 0] == 0)
        np.testing.assert_array_equal(ids[:, 0], np.arange(50) + 5)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(kind, tmp_path):
    db, queries = _codes(300, 32), _codes(10, 32, seed=4)
    index = HammingIndex(32, kind=kind, nlist=8, nprobe=3)
    index.add(db, ids=np.arange(300)[::-1])
    path = tmp_path / "db.faiss"
    index.save(path)
    again = HammingIndex.load(path)
    assert (len(again), again.bits, again.kind, again.nprobe) == (300, 32, kind, 3)
    for a, b in zip(again.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def test_interrupted_save_never_loads_as_a_smaller_index(tmp_path, monkeypatch):
    path = tmp_path / "db.faiss"
    index = HammingIndex(16)
    index.add(_codes(10, 16))
    index.save(path)
    index.add(_codes(10, 16, seed=9))

    def crash(src, dst):
        raise OSError("disk full")

    real_replace = os.replace
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        index.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(HammingIndex.load(path)) == 10  # the previous, complete save
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]
    # Index renamed but sidecar not: the count mismatch is refused.
    calls = []

    def replace_once(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("crash between renames")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_once)
    with pytest.raises(OSError):
        index.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    with pytest.raises(ValueError, match="interrupted save"):
        HammingIndex.load(path)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        HammingIndex.load(tmp_path / "missing.faiss")
    index = HammingIndex(16)
    index.add(_codes(50, 16))
    path = tmp_path / "db.faiss"
    index.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or foreign"):
        HammingIndex.load(path)
    foreign = tmp_path / "foreign.faiss"
    foreign.write_text("hello")
    with pytest.raises(ValueError, match="no sidecar"):
        HammingIndex.load(foreign)
    (tmp_path / "foreign.faiss.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a keras-mlh index sidecar"):
        HammingIndex.load(foreign)
    (tmp_path / "foreign.faiss.json").write_text("{not json")
    with pytest.raises(ValueError, match="Corrupt"):
        HammingIndex.load(foreign)
    plain = tmp_path / "plain.faiss"
    faiss.write_index_binary(faiss.IndexBinaryFlat(16), str(plain))
    (tmp_path / "plain.faiss.json").write_text(
        '{"format": "keras-mlh-hamming-index", "bits": 16, "count": 0}'
    )
    with pytest.raises(ValueError, match="not one saved by keras-mlh"):
        HammingIndex.load(plain)
    with pytest.raises(ValueError, match="does not exist"):
        index.save(tmp_path / "no" / "such" / "db.faiss")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda ix: ix.add(np.ones((2, 24))), "32-bit codes"),
        (lambda ix: ix.add(np.ones((2, 3), np.uint8)), "32-bit codes"),
        (lambda ix: ix.add(np.full((2, 32), 3)), "only ±1"),
        (lambda ix: ix.add(np.ones((2, 32)), ids=[1]), "2 integers"),
        (lambda ix: ix.add(np.ones((2, 32)), ids=[1, 1]), "unique"),
        (lambda ix: ix.add(np.ones((1, 32)), ids=[0]), "unique"),
        (lambda ix: ix.add(np.ones((2, 32)), ids=[0.5, 1.5]), "integers"),
        (lambda ix: ix.search(np.ones((1, 32)), 0), "positive integer"),
        (lambda ix: ix.search(np.ones((1, 16)), 1), "32-bit codes"),
        (lambda ix: ix.range_search(np.ones((1, 32)), -1), "radius"),
    ],
)
def test_bad_input(call, match):
    index = HammingIndex(32)
    index.add(np.ones((1, 32)))
    with pytest.raises(ValueError, match=match):
        call(index)


def test_bad_construction():
    with pytest.raises(ValueError, match="multiple of 8"):
        HammingIndex(12)
    with pytest.raises(ValueError, match="kind"):
        HammingIndex(16, kind="lsh")
    with pytest.raises(ValueError, match="no range search"):
        HammingIndex(16, kind="hnsw").range_search(np.ones((1, 16)), 1)
    with pytest.raises(ValueError, match="at least 256"):
        HammingIndex(16, kind="ivf").add(np.ones((10, 16)))
