import errno
import json
import os

import faiss
import numpy as np
import pytest

from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.index import MISSING_DISTANCE, HammingIndex

pytestmark = pytest.mark.backend_independent  # faiss and files


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


def test_k_is_capped_at_the_index_size_before_allocating(monkeypatch):
    index = HammingIndex(8)
    index.add(_codes(2, 8))
    distances, ids = index.search(_codes(1, 8), k=4)
    assert distances.shape == ids.shape == (1, 2) and set(ids[0]) == {0, 1}
    asked = []
    real_search = faiss.IndexBinaryIDMap.search
    monkeypatch.setattr(
        faiss.IndexBinaryIDMap,
        "search",
        lambda self, x, k, **kw: asked.append(k) or real_search(self, x, k, **kw),
    )
    distances, ids = index.search(_codes(3, 8), k=10**9)
    assert asked == [2] and ids.shape == (3, 2)
    empty = HammingIndex(8).search(_codes(3, 8), k=5)
    assert empty[0].shape == empty[1].shape == (3, 0)


def test_missing_distance_marks_slots_an_approximate_index_leaves_empty():
    index = HammingIndex(16, kind="ivf", nlist=4, nprobe=1)
    index.add(np.concatenate([np.ones((50, 16)), -np.ones((50, 16))]))
    distances, ids = index.search(np.ones((1, 16)), k=100)
    assert np.all(distances[ids < 0] == MISSING_DISTANCE)
    assert np.all(distances[ids >= 0] < MISSING_DISTANCE)


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


def test_a_failed_save_leaves_the_previous_index(tmp_path, monkeypatch):
    path = tmp_path / "db.faiss"
    index = HammingIndex(16)
    index.add(_codes(10, 16), paths=[f"old{i}" for i in range(10)])
    index.save(path)
    index.add(_codes(10, 16, seed=9), paths=[f"new{i}" for i in range(10)])
    for step in ("fsync", "replace"):  # the disk fills, the rename fails
        real = getattr(os, step)

        def fail(*args, step=step):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, step, fail)
        with pytest.raises(ValueError, match="Cannot write .*db.faiss': No space"):
            index.save(path)
        monkeypatch.setattr(os, step, real)
        again = HammingIndex.load(path)  # the previous, complete save
        assert len(again) == 10 and again.paths_of([9]) == ["old9"]
        assert os.listdir(tmp_path) == ["db.faiss"]


def _saved(tmp_path, n=50):
    index = HammingIndex(16)
    index.add(
        _codes(n, 16), ids=np.arange(n)[::-1] * 3, paths=[str(i) for i in range(n)]
    )
    path = tmp_path / "db.faiss"
    index.save(path)
    return index, path


def _same(a, b):
    """Same ids, paths and faiss index (its bytes: codes, ids and settings)."""
    return a.paths_of(a.ids) == b.paths_of(b.ids) and np.array_equal(
        faiss.serialize_index_binary(a._index), faiss.serialize_index_binary(b._index)
    )


def test_a_damaged_or_truncated_index_is_refused_before_faiss_reads_it(
    tmp_path, monkeypatch
):
    """Every byte flipped and every truncation: a one-line ValueError, or (a
    byte zip does not read, such as a date) the very same index; faiss only
    ever parses the bytes that were saved."""
    import faiss

    index, path = _saved(tmp_path, n=20)
    data = path.read_bytes()
    saved = faiss.serialize_index_binary(index._index).tobytes()
    real = faiss.deserialize_index_binary

    def parse(blob):
        assert blob.tobytes() == saved, "faiss parsed damaged bytes"
        return real(blob)

    monkeypatch.setattr(faiss, "deserialize_index_binary", parse)
    damaged = [data[:n] for n in range(len(data))]
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        damaged.append(bytes(flipped))
    refused = 0
    for content in damaged:
        path.write_bytes(content)
        try:
            again = HammingIndex.load(path)
        except ValueError as error:
            assert "\n" not in str(error) and "db.faiss' is not a keras-mlh" in str(
                error
            ), error
            refused += 1
        else:
            assert _same(again, index)
    assert refused > 0.9 * len(damaged)


def test_load_errors(tmp_path):
    import zipfile

    with pytest.raises(ValueError, match="not found"):
        HammingIndex.load(tmp_path / "missing.faiss")
    index, _ = _saved(tmp_path)
    foreign = tmp_path / "foreign.faiss"
    for write in (
        lambda: foreign.write_text("hello"),
        lambda: np.save(foreign.open("wb"), np.zeros(3)),
        lambda: np.savez(foreign.open("wb"), codes=np.zeros(3)),
        lambda: zipfile.ZipFile(foreign, "w").close(),
        lambda: faiss.write_index_binary(faiss.IndexBinaryFlat(16), str(foreign)),
    ):
        write()
        with pytest.raises(ValueError, match="foreign.faiss' is not a keras-mlh index"):
            HammingIndex.load(foreign)
    with pytest.raises(ValueError, match="does not exist"):
        index.save(tmp_path / "no" / "such" / "db.faiss")
    with pytest.raises(ValueError, match="is a folder"):
        index.save(tmp_path)


def _edit_meta(path, faiss_index=None, **fields):
    with np.load(path) as data:
        meta = json.loads(data["meta"].tobytes())
        blob = data["faiss"]
    if faiss_index is not None:
        blob = faiss.serialize_index_binary(faiss_index)
    meta.update(fields)
    raw = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, faiss=blob, meta=raw)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"format": "other"}, "is not a keras-mlh index"),
        ({"format_version": 2}, "format version 2.*rebuild the index"),
        ({"kind": None}, "`kind` is missing"),
        ({"nprobe": "8"}, "`nprobe` is missing or of the wrong type"),
        ({"count": True}, "`count` is missing"),
        ({"paths": {"1": "a"}}, "`paths` is missing"),
        ({"kind": "lsh"}, "Damaged index .*`kind` must be one of .*'lsh'"),
        ({"kind": "hnsw"}, "holds a IndexBinaryFlat"),
        ({"nprobe": 0}, "`nprobe` must be an integer"),
        ({"count": 7}, "holds 5 codes of 16 bits, its settings say 7"),
    ],
)
def test_edited_settings_are_refused(fields, match, tmp_path):
    path = _saved(tmp_path, n=5)[1]
    _edit_meta(path)
    assert len(HammingIndex.load(path)) == 5  # the helper writes a valid file
    _edit_meta(path, **fields)
    with pytest.raises(ValueError, match=match):
        HammingIndex.load(path)


def test_an_index_that_is_not_keras_mlh_s_is_refused(tmp_path):
    path = _saved(tmp_path, n=5)[1]
    flat = faiss.IndexBinaryFlat(16)
    flat.add(np.zeros((5, 2), np.uint8))
    _edit_meta(path, faiss_index=flat)  # no id map
    with pytest.raises(
        ValueError, match="not a keras-mlh index .*it holds a IndexBinaryFlat"
    ):
        HammingIndex.load(path)


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
    with pytest.raises(ValueError, match="at least 1024"):
        HammingIndex(16, kind="ivf").add(np.ones((10, 16)))


def test_paths_are_saved_and_loaded_with_the_index(tmp_path):
    path = tmp_path / "db.faiss"
    index = HammingIndex(16)
    index.add(_codes(3, 16), ids=[7, 3, 5], paths=["a.png", None, "c.png"])
    index.add(_codes(2, 16, seed=1), ids=[9, 8])  # no paths for these
    index.save(path)
    assert os.listdir(tmp_path) == ["db.faiss"]  # one file
    again = HammingIndex.load(path)
    assert again.paths_of([7, 3, 5, 9, -1]) == ["a.png", None, "c.png", None, None]
    plain = HammingIndex(16)
    plain.add(_codes(4, 16))
    plain.save(path)
    assert not HammingIndex.load(path).has_paths
    with pytest.raises(ValueError, match="2 strings"):
        plain.add(_codes(2, 16), paths=["x"])


@pytest.mark.parametrize(
    "ids, match",
    [
        ([-1, 1], "non-negative"),
        (np.array([0, -5], np.int32), "non-negative"),
        ([2**63, 1], r"fit|\[0, "),
        (np.array([2**64 - 1, 1], np.uint64), "fit in 64-bit"),
        ([10**30, 1], r"\[0, "),
        ([True, False], "integers"),
        (np.array([1.0, 2.0]), "integers"),
        (["1", "2"], "integers"),
    ],
)
def test_ids_must_be_non_negative_64_bit_integers(ids, match):
    index = HammingIndex(16)
    with pytest.raises(ValueError, match=match):
        index.add(_codes(2, 16), ids=ids)
    assert len(index) == 0
    index.add(_codes(2, 16), ids=np.array([0, 2**63 - 1], np.uint64))
    np.testing.assert_array_equal(index.ids, [0, 2**63 - 1])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"kind": "hnsw", "hnsw_neighbors": -3}, "hnsw_neighbors"),
        ({"kind": "hnsw", "hnsw_neighbors": 0}, "hnsw_neighbors"),
        ({"kind": "hnsw", "hnsw_neighbors": 1}, "hnsw_neighbors"),
        ({"kind": "hnsw", "hnsw_neighbors": 10**6}, "hnsw_neighbors"),
        ({"kind": "hnsw", "hnsw_neighbors": 8.0}, "hnsw_neighbors"),
        ({"kind": "ivf", "nlist": 0}, "nlist"),
        ({"kind": "ivf", "nprobe": 0}, "nprobe"),
        ({"kind": "ivf", "nprobe": True}, "nprobe"),
        ({"kind": "hnsw", "ef_search": 0}, "ef_search"),
        ({"kind": "hnsw", "ef_search": 2**31}, "ef_search"),
        ({"kind": "hnsw", "ef_construction": -1}, "ef_construction"),
        ({"nlist": 0}, "nlist"),  # checked whatever the kind
    ],
)
def test_faiss_parameters_are_validated_before_faiss_sees_them(options, match):
    with pytest.raises(ValueError, match=f"`{match}` must be an integer"):
        HammingIndex(16, **options)


def test_search_knobs_are_settable_after_load(tmp_path):
    db = _codes(400, 32)
    hnsw = HammingIndex(32, kind="hnsw", ef_search=20, ef_construction=50)
    hnsw.add(db)
    assert (hnsw._base().hnsw.efSearch, hnsw._base().hnsw.efConstruction) == (20, 50)
    ivf = HammingIndex(32, kind="ivf", nlist=8, nprobe=2)
    ivf.add(db)
    for index, name in ((hnsw, "hnsw"), (ivf, "ivf")):
        index.save(tmp_path / name)
    hnsw, ivf = (
        HammingIndex.load(tmp_path / "hnsw"),
        HammingIndex.load(tmp_path / "ivf"),
    )
    assert (hnsw.ef_search, hnsw.ef_construction, ivf.nprobe) == (20, 50, 2)
    assert hnsw._base().hnsw.efSearch == 20 and ivf._base().nprobe == 2
    hnsw.ef_search, ivf.nprobe = 300, 8
    assert hnsw._base().hnsw.efSearch == 300 and ivf._base().nprobe == 8
    # nprobe = nlist visits every list: the IVF search is then exact.
    exact = np.sort(_true_distances(db[:5], db), axis=1)[:, :10]
    np.testing.assert_array_equal(ivf.search(db[:5], 10)[0], exact)
    with pytest.raises(ValueError, match="`ef_search` must be"):
        hnsw.ef_search = 0
    with pytest.raises(ValueError, match="`nprobe` must be"):
        ivf.nprobe = -1
    assert hnsw.ef_search == 300 and ivf.nprobe == 8
    with pytest.raises(AttributeError):
        ivf.nlist = 4  # fixed once built


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_every_stored_id_re_added_after_out_of_order_batches_is_refused(kind, tmp_path):
    rng = np.random.default_rng(0)
    n, batches = 1200, 6
    ids = rng.permutation(n * 3)[:n]  # batches in no order, each unordered
    index = HammingIndex(8, kind=kind, nlist=4)
    for part in np.array_split(np.arange(n), batches):
        index.add(np.ones((len(part), 8)), ids=ids[part])
    index.save(tmp_path / "db")
    for again in (index, HammingIndex.load(tmp_path / "db")):
        for stored in ids:
            with pytest.raises(ValueError, match=f"id {stored} is already in the"):
                again.add(np.ones((2, 8)), ids=[n * 5, stored])
        assert len(again) == n
        # A new id below the largest one is fine; default ids go above all.
        new = int(np.setdiff1d(np.arange(n * 3), ids)[0])
        again.add(np.ones((1, 8)), ids=[new])
        assert again.add(np.ones((1, 8)))[0] == ids.max() + 1


_RACE = """
import sys, time
import numpy as np
from keras_mlh_runtime.index import HammingIndex
path, role, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
end = time.monotonic() + seconds
if role != "reader":
    n, first = (300, 0) if role == "a" else (500, 1000)
    index = HammingIndex(64)
    ids = np.arange(first, first + n)
    index.add(np.random.default_rng(n).integers(0, 256, (n, 8), dtype=np.uint8),
              ids=ids, paths=[f"{role}{i}" for i in ids])
    saves = 0
    while time.monotonic() < end:
        index.save(path); saves += 1
    print(saves)
    sys.exit(0)
good = 0
while time.monotonic() < end:
    index = HammingIndex.load(path)  # any error fails the test
    if not len(index):
        continue  # the empty index saved before the writers started
    role = {300: "a", 500: "b"}[len(index)]
    ids = index.ids
    assert ids[0] == (0 if role == "a" else 1000), (role, ids[0])
    assert index.paths_of(ids) == [f"{role}{i}" for i in ids], role
    good += 1
print(good)
"""


def test_concurrent_saves_and_loads_never_mix_two_versions(tmp_path):
    """Two writers save different indexes to one path while two readers load
    it: every load is one complete version (ids, codes, paths), none fails."""
    import subprocess
    import sys

    path = str(tmp_path / "db.index")
    script = tmp_path / "race.py"
    script.write_text(_RACE)
    HammingIndex(64).save(path)  # something to load from the start

    def start(role, seconds):
        return subprocess.Popen(
            [sys.executable, str(script), path, role, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    processes = [start("a", 3), start("b", 3), start("reader", 3), start("reader", 3)]
    outputs = [p.communicate(timeout=120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
    counts = [int(out) for out, _ in outputs]
    assert min(counts) > 0, counts  # saves of each writer, loads of each reader
    assert sorted(os.listdir(tmp_path)) == ["db.index", "race.py"]
