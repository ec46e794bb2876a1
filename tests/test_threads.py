"""Threads inside a step (graphcore.kernels.threads): the thread-count setting, the pool, the
shares a solver's update is cut into, and results that do not depend on the thread count."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import graphcore as gc
import graphcore.kernels.segments as segments_mod
from graphcore.kernels import threads
from graphcore.kernels.segments import SHARE_ALIGN, Part, Segment, share_out
from tests.allocations import peak_growth

F32, F64 = np.float32, np.float64
SHAPES = [(37, 29), (29,), (29, 13), (13,), (1000,)]
CTORS = {
    "sgd": gc.NewVanillaSolver,
    "momentum": gc.NewMomentum,
    "adagrad": gc.NewAdaGradSolver,
    "rmsprop": gc.NewRMSPropSolver,
    "adam": gc.NewAdamSolver,
    "adamw": gc.NewAdamW,
    "bb": gc.NewBarzilaiBorweinSolver,
}


@pytest.fixture
def thread_state(monkeypatch):
    """Restores the thread count and the kernel backend after the test."""
    was_n, was_accel = threads._state["n"], gc.accel._state["on"]
    try:
        yield
    finally:
        threads._state["n"] = was_n
        gc.accel.set_enabled(was_accel)


class P:
    def __init__(self, value, grad):
        self.value, self.grad = value, grad


def _params(dtype, layout, seed=3):
    r = np.random.default_rng(seed)
    values = [r.standard_normal(s).astype(dtype) for s in SHAPES]
    sizes = [int(np.prod(s)) for s in SHAPES]
    if layout == "separate":
        grads = [np.zeros(s, dtype) for s in SHAPES]
    else:
        flat, lo, grads = np.zeros(sum(sizes), dtype), 0, []
        for s, n in zip(SHAPES, sizes, strict=True):
            grads.append(flat[lo : lo + n].reshape(s))
            lo += n
    return [P(v, g) for v, g in zip(values, grads, strict=True)]


def _train(name, opts, dtype, layout, steps=5):
    r = np.random.default_rng(4)
    ps = _params(dtype, layout)
    solver = CTORS[name](*opts)
    for _ in range(steps):
        for p in ps:
            p.grad[...] = (r.standard_normal(p.value.shape) * 0.3).astype(dtype)
        solver.step(ps)
    return [p.value.copy() for p in ps], solver


# ----- the setting -------------------------------------------------------------------------------


def test_set_num_threads_round_trips_and_refuses_bad_counts(thread_state):
    gc.SetNumThreads(3)
    assert gc.NumThreads() == 3
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="SetNumThreads takes a thread count >= 1"):
            gc.SetNumThreads(bad)
    assert gc.NumThreads() == 3


@pytest.mark.parametrize(
    "env, want",
    [
        ({"GRAPHCORE_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "1"}, 3),
        ({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "4"}, 1),  # the BLAS's are its own
        ({}, 1),
    ],
)
def test_default_is_one_unless_the_environment_asks(env, want, monkeypatch, thread_state):
    for key in ("GRAPHCORE_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    threads._state["n"] = None
    assert threads.NumThreads() == want


def test_a_bad_environment_value_is_ignored_with_a_warning(monkeypatch, thread_state):
    monkeypatch.setenv("GRAPHCORE_NUM_THREADS", "many")
    threads._state["n"] = None
    with pytest.warns(RuntimeWarning, match="GRAPHCORE_NUM_THREADS='many'"):
        assert threads.NumThreads() == 1


def test_shares_for_needs_enough_bytes_per_thread(thread_state):
    gc.SetNumThreads(1)
    assert threads.shares_for(1 << 40) == 1
    gc.SetNumThreads(3)
    m = threads.MIN_SHARE_BYTES
    assert [threads.shares_for(b) for b in (0, 2 * m - 1, 2 * m, 10 * m)] == [1, 1, 2, 3]


# ----- the pool ----------------------------------------------------------------------------------


def test_run_uses_other_threads_and_returns_when_all_are_done(thread_state):
    seen = [None] * 4
    together = threading.Barrier(4, timeout=10)  # each share waits for all four to start

    def note(i):
        seen[i] = threading.get_ident()
        together.wait()

    threads.run(note, [0, 1, 2, 3])
    assert threading.get_ident() in seen
    assert len(set(seen)) == 4


def test_the_caller_runs_the_shares_no_pool_thread_has_claimed():
    ran_on = []
    threads.run(lambda i: ran_on.append(threading.get_ident()), list(range(50)))
    assert len(ran_on) == 50  # every share once, whoever ran it


def test_an_error_in_a_share_is_raised_in_the_caller_and_the_pool_still_works():
    def boom(i):
        if i == 1:
            raise KeyError("share 1")

    with pytest.raises(KeyError, match="share 1"):
        threads.run(boom, [0, 1, 2])
    out = []
    threads.run(out.append, [5, 6])
    assert sorted(out) == [5, 6]


def test_a_second_caller_runs_its_shares_itself():
    inside, release = threading.Event(), threading.Event()
    ids: dict[str, set[int]] = {"outer": set(), "inner": set()}

    both = threading.Barrier(2, timeout=10)

    def outer(i):
        ids["outer"].add(threading.get_ident())
        both.wait()  # two threads run the outer job
        if i == 0:
            inside.set()
            release.wait(5)

    def inner_caller():
        inside.wait(5)
        threads.run(lambda i: ids["inner"].add(threading.get_ident()), [0, 1, 2])
        release.set()

    t = threading.Thread(target=inner_caller)
    t.start()
    threads.run(outer, [0, 1])
    t.join()
    assert ids["inner"] == {t.ident}  # the pool was busy: all three on the caller's thread
    assert len(ids["outer"]) == 2


# ----- shares of segments ------------------------------------------------------------------------


def _arena_segment(sizes, dtype=F64):
    g = np.arange(sum(sizes), dtype=dtype)
    s, c = np.empty_like(g), np.zeros_like(g)
    parts, lo = [], 0
    for n in sizes:
        parts.append(Part(np.ones(n, dtype), g[lo : lo + n], s[lo : lo + n],
                          {"cache": c[lo : lo + n]}))
        lo += n
    return Segment(g, s, {"cache": c}, parts)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_share_out_cuts_one_segment_evenly_on_aligned_offsets(k):
    seg = _arena_segment([1000, 7, 3000, 1])
    shares = share_out([seg], k)
    assert len(shares) == k
    flat = [piece for share in shares for piece in share]
    got = np.concatenate([p.g for piece in flat for p in piece.parts])
    np.testing.assert_array_equal(got, seg.g)  # every element once, in order
    starts = [int(share[0].g[0]) for share in shares]
    assert all(s % SHARE_ALIGN == 0 for s in starts)
    sizes = [sum(piece.g.size for piece in share) for share in shares]
    assert max(sizes) - min(sizes) <= 2 * SHARE_ALIGN


def test_share_out_keeps_uncuttable_segments_whole():
    big = Segment.single(np.ones((40, 40))[:, :20], np.ones((40, 20)), np.empty((40, 20)), {})
    assert big.flat_parts is None  # a strided value: cannot be cut
    small = _arena_segment([100])
    shares = share_out([big, small], 2)
    assert [[piece.g.size for piece in share] for share in shares] == [[800], [100]]


# ----- solvers: the same numbers on any number of threads ----------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("layout", ["flat", "separate"])
@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("regularised", [False, True])
@pytest.mark.parametrize("name", sorted(CTORS))
def test_solvers_give_the_same_numbers_on_any_number_of_threads(
    name, regularised, dtype, layout, backend, monkeypatch, thread_state
):
    if backend == "compiled" and not gc.accel.available():
        pytest.skip("numba is not installed")
    gc.accel.set_enabled(backend == "compiled")
    opts = [gc.WithLearnRate(0.01)]
    if regularised:
        opts += [gc.WithL1Reg(0.01), gc.WithL2Reg(0.02), gc.WithBatchSize(4), gc.WithClip(0.05)]
    monkeypatch.setattr(threads, "MIN_SHARE_BYTES", 64)  # shares of a few hundred bytes
    monkeypatch.setattr(segments_mod, "SHARE_BLAS_ELEMENTS", 40)  # BLAS calls cut in pieces
    gc.SetNumThreads(1)
    one, _ = _train(name, opts, dtype, layout)
    gc.SetNumThreads(3)
    three, solver = _train(name, opts, dtype, layout)
    shares = solver._shares[1][gc.NumThreads()]
    assert len(shares) == (1 if name == "bb" else 3)
    for a, b in zip(one, three, strict=True):
        np.testing.assert_array_equal(a, b)


def test_changing_the_thread_count_between_steps_reshares(monkeypatch, thread_state):
    monkeypatch.setattr(threads, "MIN_SHARE_BYTES", 64)
    ps = _params(F64, "flat")
    solver = gc.NewRMSPropSolver()
    for n in (1, 2, 4, 1):
        gc.SetNumThreads(n)
        for p in ps:
            p.grad[...] = 0.5
        solver.step(ps)
        assert len(solver._shares[1][gc.NumThreads()]) == n


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
def test_threaded_steps_allocate_no_arrays(backend, monkeypatch, thread_state):
    if backend == "compiled" and not gc.accel.available():
        pytest.skip("numba is not installed")
    gc.accel.set_enabled(backend == "compiled")
    monkeypatch.setattr(threads, "MIN_SHARE_BYTES", 16 * 1024)
    gc.SetNumThreads(2)
    r = np.random.default_rng(0)
    flat = np.zeros(3 * 100 * 100, F32)  # as test_solvers' check: three 100 x 100 parameters
    ps = [P(r.standard_normal((100, 100)).astype(F32), flat[i * 10000 : (i + 1) * 10000]
            .reshape(100, 100)) for i in range(3)]
    src = [r.standard_normal(p.value.shape).astype(F32) for p in ps]
    solver = gc.NewRMSPropSolver(gc.WithBatchSize(10))

    def step():
        for p, s in zip(ps, src, strict=True):
            np.copyto(p.grad, s)
        solver.step(ps)

    for _ in range(3):
        step()
    assert len(solver._shares[1][gc.NumThreads()]) == 2
    growth = peak_growth(step, 20)
    assert growth < ps[0].value.nbytes // 8


@pytest.mark.parametrize("n, k", [(0, 2), (1, 3), (5, 2), (10, 3), (100, 7)])
def test_row_slices_cover_the_rows_once(n, k):
    rows = threads.row_slices(n, k)
    assert len(rows) == min(max(k, 1), n)
    covered = [i for r in rows for i in range(n)[r]]
    assert covered == list(range(n))
    lengths = [r.stop - r.start for r in rows]
    assert lengths == sorted(lengths, reverse=True)
    assert not lengths or lengths[0] - lengths[-1] <= 1
