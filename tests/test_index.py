import json
import os

import faiss
import numpy as np
import pytest

from keras_mlh.codes import pack_codes
from keras_mlh.index import MISSING_DISTANCE, HammingIndex

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


def test_interrupted_save_leaves_the_old_set_or_a_refused_one(tmp_path, monkeypatch):
    path = tmp_path / "db.faiss"
    index = HammingIndex(16)
    index.add(_codes(10, 16), paths=[f"old{i}" for i in range(10)])
    index.save(path)
    index.add(_codes(10, 16, seed=9), paths=[f"new{i}" for i in range(10)])

    def crash(src, dst):
        raise OSError("disk full")

    real_replace = os.replace
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ValueError, match="Cannot write the index .*db.faiss': disk"):
        index.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    again = HammingIndex.load(path)  # the previous, complete save
    assert len(again) == 10 and again.paths_of([9]) == ["old9"]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".keras-mlh-")]
    # New index and paths renamed, sidecar not: the mixed set is refused.
    calls = []

    def replace_twice(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError("crash between renames")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_twice)
    with pytest.raises(ValueError, match="crash between renames"):
        index.save(path)
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls[-1].endswith("db.faiss.json")  # the sidecar is renamed last
    with pytest.raises(ValueError, match="does not match the sidecar"):
        HammingIndex.load(path)


def _sidecar_for(path, bits, count, **fields):
    from keras_mlh.index.file_set import file_record
    from keras_mlh.index.hamming_index import FORMAT, FORMAT_VERSION

    sidecar = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "bits": bits,
        "count": count, "kind": "flat", "hnsw_neighbors": 32, "nlist": 8,
        "nprobe": 1, "ef_search": 16, "ef_construction": 40,
        "files": {"index": file_record(path), "paths": None}, **fields,
    }  # fmt: skip
    (path.parent / (path.name + ".json")).write_text(json.dumps(sidecar))


def test_a_damaged_index_file_is_refused_before_faiss_reads_it(tmp_path, monkeypatch):
    import faiss

    index = HammingIndex(16)
    index.add(_codes(50, 16))
    path = tmp_path / "db.faiss"
    index.save(path)
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF  # same size, one byte edited: faiss could misparse it
    path.write_bytes(bytes(data))

    def parse(*args):
        raise AssertionError("faiss parsed a file that does not match its sidecar")

    monkeypatch.setattr(faiss, "read_index_binary", parse)
    with pytest.raises(ValueError, match="db.faiss' does not match the sidecar"):
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
    with pytest.raises(ValueError, match="db.faiss' does not match the sidecar"):
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
    (tmp_path / "foreign.faiss.json").write_text(
        '{"format": "keras-mlh-hamming-index", "bits": 16, "count": 0}'
    )
    with pytest.raises(ValueError, match="format version 1.*rebuild the index"):
        HammingIndex.load(foreign)
    _sidecar_for(foreign, 16, 0)
    with pytest.raises(ValueError, match="truncated or foreign"):
        HammingIndex.load(foreign)
    plain = tmp_path / "plain.faiss"
    faiss.write_index_binary(faiss.IndexBinaryFlat(16), str(plain))
    _sidecar_for(plain, 16, 0)
    with pytest.raises(ValueError, match="not one saved by keras-mlh"):
        HammingIndex.load(plain)
    with pytest.raises(ValueError, match="does not exist"):
        index.save(tmp_path / "no" / "such" / "db.faiss")
    with pytest.raises(ValueError, match="is a folder"):
        index.save(tmp_path)


def test_load_reads_the_index_file_in_chunks(tmp_path):
    """The file's bytes are hashed as faiss reads them, never held whole
    beside the index (tracemalloc sees Python's bytes, not faiss's memory);
    a truncated file whose sidecar matches it is still refused."""
    import tracemalloc

    index = HammingIndex(64)
    index.add(np.zeros((400_000, 8), np.uint8))  # a 6.4 MB file
    path = tmp_path / "db.faiss"
    index.save(path)
    size = path.stat().st_size
    tracemalloc.start()
    again = HammingIndex.load(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(again) == 400_000 and size > 6_000_000
    assert peak < size / 2
    path.write_bytes(path.read_bytes()[: size // 2])
    _sidecar_for(path, 64, 400_000)
    with pytest.raises(ValueError, match="truncated or foreign"):
        HammingIndex.load(path)


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"kind": None}, "`kind` is missing"),
        ({"nprobe": "8"}, "`nprobe` is missing or not a int"),
        ({"count": True}, "`count` is missing"),
        ({"kind": "lsh"}, "unknown kind 'lsh'"),
        ({"kind": "hnsw"}, "holds a IndexBinaryFlat, but its sidecar says kind='hnsw'"),
        ({"nprobe": 0}, "`nprobe` must be an integer"),
        ({"count": 7}, "holds 5 codes"),
    ],
)
def test_edited_sidecars_are_refused(fields, match, tmp_path):
    index = HammingIndex(16)
    index.add(_codes(5, 16))
    path = tmp_path / "db.faiss"
    index.save(path)
    _sidecar_for(path, 16, 5)
    assert len(HammingIndex.load(path)) == 5  # the helper writes a valid sidecar
    _sidecar_for(path, 16, fields.pop("count", 5), **fields)
    with pytest.raises(ValueError, match=match):
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
    from keras_mlh.index import index_files

    path = tmp_path / "db.faiss"
    index = HammingIndex(16)
    index.add(_codes(3, 16), ids=[7, 3, 5], paths=["a.png", None, "c.png"])
    index.add(_codes(2, 16, seed=1), ids=[9, 8])  # no paths for these
    index.save(path)
    names = index_files(path)
    assert names == tuple(
        str(tmp_path / n) for n in ("db.faiss", "db.faiss.json",
                                    "db.faiss.paths.json", "db.faiss.lock")
    )  # fmt: skip
    assert all(os.path.isfile(n) for n in names[:3])
    assert not os.path.exists(names[3])  # the lock file lives during a save
    again = HammingIndex.load(path)
    assert again.paths_of([7, 3, 5, 9, -1]) == ["a.png", None, "c.png", None, None]
    # Another save without paths removes the earlier save's paths file.
    plain = HammingIndex(16)
    plain.add(_codes(4, 16))
    plain.save(path)
    assert not os.path.exists(names[2]) and not HammingIndex.load(path).has_paths
    # An edited or missing paths file is refused, naming it.
    index.save(path)
    with open(names[2], "a") as f:
        f.write(" ")
    with pytest.raises(ValueError, match="paths file .*paths.json' does not match"):
        HammingIndex.load(path)
    os.remove(names[2])
    with pytest.raises(ValueError, match="paths file .* is missing"):
        HammingIndex.load(path)
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


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_adding_with_ids_is_linear_in_the_batch(kind):
    """Count-based: ids sorted or merged over many adds, not a timing."""
    rng = np.random.default_rng(0)
    batches, size = 64, 500
    n = batches * size
    ids = rng.permutation(n * 3)[:n]  # not in increasing order
    index = HammingIndex(8, kind=kind, nlist=4)
    for b in range(batches):
        index.add(np.ones((size, 8)), ids=ids[b * size : (b + 1) * size])
    # Re-sorting the stored ids on every add would cost n * batches / 2 ids.
    assert index._ids.work <= n * (np.log2(batches) + 2)
    assert index._ids.work < n * batches / 8
    # Flat: runs of faiss's own storage; IVF: one sorted copy of the ids.
    assert index._ids.nbytes == (0 if kind == "flat" else 8 * n)
    with pytest.raises(ValueError, match=f"id {ids[123]} is already in the index"):
        index.add(np.ones((2, 8)), ids=[n * 5, ids[123]])
    assert len(index) == n
    # Increasing ids (and the default ones) keep nothing beyond faiss's ids.
    ordered = HammingIndex(8)
    for b in range(batches):
        ordered.add(np.ones((size, 8)), ids=b * 10_000 + np.arange(size) * 2)
        ordered.add(np.ones((3, 8)))
    assert ordered._ids.nbytes == 0 and ordered._ids.work == 0
    with pytest.raises(ValueError, match="id 2 is already"):
        ordered.add(np.ones((1, 8)), ids=[2])


def _scattered_index(n=6000, batches=12, seed=0):
    """A flat index of random 64-bit codes added with ids in no order, in
    batches (several runs, merged in place), and its codes by id."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    ids = rng.permutation(10 * n)[:n]
    index = HammingIndex(64)
    for part in np.array_split(np.arange(n), batches):
        index.add(codes[part], ids=ids[part], paths=[f"{i}.png" for i in ids[part]])
    return index, dict(zip(ids.tolist(), codes, strict=True))


def _assert_codes_keep_their_ids(index, code_of):
    ids = index.ids
    assert sorted(ids.tolist()) == sorted(code_of)
    sample = ids[:: max(1, len(ids) // 200)]
    distances, found = index.search(np.stack([code_of[i] for i in sample]), k=1)
    np.testing.assert_array_equal(distances[:, 0], 0)
    np.testing.assert_array_equal(found[:, 0], sample)
    if index.has_paths:
        assert index.paths_of(sample) == [f"{i}.png" for i in sample]


def test_flat_ids_added_out_of_order_keep_no_copy():
    """A flat index sorts faiss's own ids and codes in runs: no copy of the
    ids is kept, and every code still answers with its own id."""
    index, code_of = _scattered_index()
    assert index._ids.nbytes == 0 and len(index._ids._runs) > 1
    _assert_codes_keep_their_ids(index, code_of)
    for ids, codes in [index._ids._storage()]:
        for start, end in index._ids._runs:
            assert np.all(ids[start + 1 : end] > ids[start : end - 1])
        assert codes.shape == (len(index), 8)
    stored = int(index.ids[1234])
    with pytest.raises(ValueError, match=f"id {stored} is already in the index"):
        index.add(np.zeros((2, 8), np.uint8), ids=[10**9, stored])
    assert len(index) == 6000


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_memory_held_after_adds_out_of_order(kind):
    """Python-side memory still allocated after many adds with ids in no
    order (tracemalloc sees numpy's allocations, not faiss's): none for a
    flat index, one sorted copy of the ids (8 bytes each) for IVF."""
    import tracemalloc

    rng = np.random.default_rng(3)
    n, batches = 20_000, 20
    codes = rng.integers(0, 256, (n, 8), dtype=np.uint8)
    ids = rng.permutation(10 * n)[:n]
    index = HammingIndex(64, kind=kind, nlist=4)
    parts = [(codes[p], ids[p]) for p in np.array_split(np.arange(n), batches)]
    tracemalloc.start()
    for part_codes, part_ids in parts:
        index.add(part_codes, ids=part_ids)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if kind == "flat":
        assert held < n  # under 1 byte per id: no copy of them
    else:
        assert held >= 8 * n


def test_an_add_cut_short_while_reordering_is_refused_afterwards(monkeypatch, tmp_path):
    """A merge interrupted half way may leave ids and codes mismatched: the
    index then refuses to search, add or save rather than answer wrongly."""
    from keras_mlh_runtime.index import id_set

    index, _ = _scattered_index(n=600, batches=2)
    real = id_set.merge_in_place

    def interrupted(ids, codes, *bounds, **kwargs):
        ids[bounds[0]] = ids[bounds[-1] - 1]  # half moved
        raise MemoryError("out of memory")

    monkeypatch.setattr(id_set, "merge_in_place", interrupted)
    with pytest.raises(MemoryError):
        index.add(np.zeros((300, 8), np.uint8), ids=np.arange(300) + 10**9 + 1)
    monkeypatch.setattr(id_set, "merge_in_place", real)
    for attempt in (
        lambda: index.search(np.zeros((1, 8), np.uint8), 1),
        lambda: index.range_search(np.zeros((1, 8), np.uint8), 1),
        lambda: index.add(np.zeros((1, 8), np.uint8)),
        lambda: index.save(tmp_path / "db"),
    ):
        with pytest.raises(RuntimeError, match="interrupted while add"):
            attempt()
    assert not os.path.exists(tmp_path / "db")


def test_flat_runs_survive_save_and_load(tmp_path):
    index, code_of = _scattered_index(seed=1)
    index.save(tmp_path / "db")
    again = HammingIndex.load(tmp_path / "db")
    assert again._ids.nbytes == 0 and again._ids.work == 0  # runs found, not sorted
    _assert_codes_keep_their_ids(again, code_of)
    stored = int(again.ids[17])
    with pytest.raises(ValueError, match=f"id {stored} is already"):
        again.add(np.zeros((1, 8), np.uint8), ids=[stored])
    again.add(np.zeros((3, 8), np.uint8), ids=[10**9 + 2, 10**9, 10**9 + 1])
    np.testing.assert_array_equal(again.search(np.zeros((1, 8), np.uint8), 1)[0], 0)


def test_a_flat_index_in_many_stretches_is_sorted_once_on_load(tmp_path):
    """An index whose ids are in no order at all (e.g. raw faiss's): one sort."""
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 256, (500, 8), dtype=np.uint8)
    ids = rng.permutation(500)
    index = HammingIndex(64, kind="flat")
    index._index.add_with_ids(codes, ids)  # behind IdSet's back: unsorted
    index.save(tmp_path / "db")
    again = HammingIndex.load(tmp_path / "db")
    np.testing.assert_array_equal(again.ids, np.arange(500))
    assert again._ids.work == 500 and again._ids._runs == [(0, 500)]
    _assert_codes_keep_their_ids(again, dict(zip(ids.tolist(), codes, strict=True)))


@pytest.mark.parametrize("sizes", [(5, 300), (300, 5), (200, 200), (0, 7), (7, 0)])
def test_merge_in_place_merges_two_sorted_ranges_with_their_codes(sizes):
    from keras_mlh_runtime.index.id_set import merge_in_place

    rng = np.random.default_rng(sum(sizes))
    left, right = sizes
    ids = rng.permutation(10 * (left + right) + 10)[: left + right + 6].astype(np.int64)
    ids[3 : 3 + left].sort()  # two sorted ranges inside untouched ends
    ids[3 + left : 3 + left + right].sort()
    codes = np.stack([ids.astype(">i8").view(np.uint8).reshape(-1, 8)[:, ::-1]] * 1)[0]
    before = ids.copy()
    merge_in_place(ids, codes, 3, 3 + left, 3 + left + right, chunk=16)
    np.testing.assert_array_equal(ids[3:-3], np.sort(before[3:-3]))
    np.testing.assert_array_equal(ids[:3], before[:3])
    np.testing.assert_array_equal(ids[-3:], before[-3:])
    np.testing.assert_array_equal(codes.copy().view("<i8").reshape(-1), ids)


def test_loaded_index_refuses_stored_ids(tmp_path):
    index = HammingIndex(8)
    index.add(np.ones((3, 8)), ids=[30, 10, 20])
    index.save(tmp_path / "db")
    again = HammingIndex.load(tmp_path / "db")
    with pytest.raises(ValueError, match="id 10 is already"):
        again.add(np.ones((1, 8)), ids=[10])
    np.testing.assert_array_equal(again.add(np.ones((2, 8))), [31, 32])


_RACE = """
import contextlib, os, sys, time
import numpy as np
from keras_mlh.index import HammingIndex, file_set
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
good = errors = attempts = 0
while time.monotonic() < end:
    attempts += 1
    unlocked = attempts % 2 == 1  # every other load trusts the checksums alone
    real = file_set.reader_lock
    if unlocked:
        file_set.reader_lock = lambda p: contextlib.nullcontext()
    try:
        index = HammingIndex.load(path)
    except ValueError as error:
        msg = str(error)
        assert "does not match the sidecar" in msg or "is missing" in msg or (
            "not found" in msg or "no sidecar" in msg), msg
        errors += 1
        continue
    finally:
        file_set.reader_lock = real
    role = {300: "a", 500: "b"}[len(index)]
    ids = index.ids
    assert ids[0] == (0 if role == "a" else 1000), (role, ids[0])
    assert index.paths_of(ids) == [f"{role}{i}" for i in ids], role
    good += 1
print(good, errors)
"""


def test_concurrent_saves_and_loads_give_matched_sets_or_clear_errors(tmp_path):
    import subprocess
    import sys

    path = str(tmp_path / "db.index")
    script = tmp_path / "race.py"
    script.write_text(_RACE)

    def start(role, seconds):
        return subprocess.Popen(
            [sys.executable, str(script), path, role, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    writers = [start("a", 3), start("b", 3)]
    reader = start("reader", 3.5)
    outputs = [p.communicate(timeout=120) for p in (*writers, reader)]
    for process, (_out, err) in zip((*writers, reader), outputs, strict=True):
        assert process.returncode == 0, err
    saves = [int(out) for out, _ in outputs[:2]]
    good, errors = map(int, outputs[2][0].split())
    assert min(saves) > 0 and good > 0, (saves, good, errors)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".keras-mlh-")]


def test_saves_wait_for_a_live_lock_and_not_for_a_killed_one(tmp_path):
    import signal
    import subprocess
    import sys
    import threading

    path = tmp_path / "db.index"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom keras_mlh.index import file_set\n"
         "with file_set.writer_lock(sys.argv[1]):\n"
         "    print('locked', flush=True); time.sleep(120)\n", str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        index = HammingIndex(16)
        index.add(_codes(5, 16))
        saver = threading.Thread(target=index.save, args=(path,))
        saver.start()
        saver.join(0.5)
        assert saver.is_alive() and not path.exists()  # waits for the writer
        holder.send_signal(signal.SIGKILL)  # dies holding the lock
        saver.join(30)
        assert not saver.is_alive()  # the kernel released the stale lock
    finally:
        holder.kill()
        holder.wait()
    assert len(HammingIndex.load(path)) == 5
    assert not os.path.exists(str(path) + ".lock")  # the stale one is removed
