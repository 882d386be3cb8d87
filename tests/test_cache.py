import multiprocessing as mp
import os
import time

import h5py
import numpy as np
import pytest

from hybridkit.data._cache import CacheManager, cache_key


def _writer(values):
    def write(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=values)
    return write


def test_key_depends_on_content_not_identity():
    a = np.arange(5.0)
    assert cache_key(model="Burgers", nu=a, cycle=1) == cache_key(cycle=1, nu=a.copy(), model="Burgers")
    assert cache_key(model="Burgers", nu=a, cycle=1) != cache_key(model="Burgers", nu=a + 1e-9, cycle=1)
    assert cache_key(model="Burgers", nu=a, cycle=1) != cache_key(model="Burgers", nu=a, cycle=2)


def test_put_get_and_reuse(tmp_path):
    cache = CacheManager(tmp_path)
    key = cache_key(what="a")
    assert cache.get(key) is None
    calls = []
    def write(path):
        calls.append(path)
        _writer(np.arange(10.0))(path)
    p1 = cache.get_or_create(key, write, meta={"cycle": 0})
    p2 = cache.get_or_create(key, write)
    assert p1 == p2 and len(calls) == 1
    with h5py.File(p1) as f:
        np.testing.assert_array_equal(f["x"][:], np.arange(10.0))
    (entry,) = cache.entries()
    assert entry.key == key and entry.meta == {"cycle": 0} and entry.size == p1.stat().st_size


def test_failed_write_leaves_nothing(tmp_path):
    cache = CacheManager(tmp_path)
    key = cache_key(what="broken")
    def write(path):
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=np.zeros(100))
        raise RuntimeError("killed mid-write")
    with pytest.raises(RuntimeError):
        cache.put(key, write)
    assert cache.get(key) is None and cache.entries() == []
    assert [p.name for p in tmp_path.iterdir() if p.name != ".lock"] == []


def test_file_without_description_is_not_an_entry(tmp_path):
    # The data file renamed into place but the process died before its description: not read.
    cache = CacheManager(tmp_path)
    key = cache_key(what="half")
    _writer(np.zeros(3))(cache.path(key))
    assert cache.get(key) is None and cache.entries() == []


def test_cleanup_by_size_removes_least_recently_used(tmp_path):
    cache = CacheManager(tmp_path)
    keys = [cache_key(i=i) for i in range(3)]
    for i, k in enumerate(keys):
        cache.put(k, _writer(np.zeros(2000)))
        os.utime(cache._meta_path(k), (1000 + i, 1000 + i))
    cache.get(keys[0])  # now the most recently used
    size = cache.entries()[0].size
    removed = cache.cleanup(max_bytes=2 * size)
    assert removed == [keys[1]]
    assert {e.key for e in cache.entries()} == {keys[0], keys[2]}


def test_cleanup_by_age(tmp_path):
    cache = CacheManager(tmp_path)
    old, new = cache_key(a=1), cache_key(a=2)
    cache.put(old, _writer(np.zeros(3)))
    cache.put(new, _writer(np.zeros(3)))
    os.utime(cache._meta_path(old), (time.time() - 100, time.time() - 100))
    assert cache.cleanup(max_age_s=50) == [old]
    assert [e.key for e in cache.entries()] == [new]


def _put_many(root, seed):
    cache = CacheManager(root)
    for _ in range(5):
        cache.put(cache_key(shared=True), _writer(np.full(5000, float(seed))))


@pytest.mark.slow
def test_two_processes_writing_the_same_key_leave_a_valid_file(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_put_many, args=(str(tmp_path), s)) for s in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    path = CacheManager(tmp_path).get(cache_key(shared=True))
    with h5py.File(path) as f:
        x = f["x"][:]
    assert x.shape == (5000,) and len(set(x.tolist())) == 1 and x[0] in (1.0, 2.0)
    assert not list(tmp_path.glob(".*.tmp"))
