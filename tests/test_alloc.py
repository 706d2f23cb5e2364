"""alloc.reuse_freed_memory: glibc's parameters set by the first open block, restored (and the spare
memory handed back) by the last one to close, nested or in other threads."""
import threading

import numpy as np

from interpret._util import alloc


class FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


KEEP = [("mallopt", alloc.M_ARENA_MAX, 1), ("mallopt", alloc.M_MMAP_THRESHOLD, alloc.KEEP_MMAP),
        ("mallopt", alloc.M_TRIM_THRESHOLD, alloc.KEEP_TRIM)]
DEFAULTS = [("mallopt", alloc.M_ARENA_MAX, alloc.DEFAULT_ARENAS),
            ("mallopt", alloc.M_MMAP_THRESHOLD, alloc.DEFAULT_MMAP),
            ("mallopt", alloc.M_TRIM_THRESHOLD, alloc.DEFAULT_TRIM), ("trim", 0)]


def test_nested_blocks_set_once_and_restore_when_the_outermost_ends(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(alloc, "_LIBC", libc)
    with alloc.reuse_freed_memory():
        assert libc.calls == KEEP
        with alloc.reuse_freed_memory():
            pass
        assert libc.calls == KEEP                     # the inner block changed nothing
    assert libc.calls == KEEP + DEFAULTS
    with alloc.reuse_freed_memory():                  # a later block sets them again
        pass
    assert libc.calls == (KEEP + DEFAULTS) * 2


def test_an_error_inside_still_restores_the_defaults(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(alloc, "_LIBC", libc)
    try:
        with alloc.reuse_freed_memory():
            with alloc.reuse_freed_memory():
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert libc.calls == KEEP + DEFAULTS and alloc._depth == [0]


def test_blocks_in_two_threads_restore_when_both_have_ended(monkeypatch):
    libc = FakeLibc()
    monkeypatch.setattr(alloc, "_LIBC", libc)
    inside, release = threading.Event(), threading.Event()

    def other():
        with alloc.reuse_freed_memory():
            inside.set()
            release.wait(10)

    with alloc.reuse_freed_memory():
        t = threading.Thread(target=other)
        t.start()
        assert inside.wait(10)
    assert libc.calls == KEEP                         # the other thread's block is still open
    release.set()
    t.join(10)
    assert libc.calls == KEEP + DEFAULTS


def test_the_real_libc_block_gives_working_memory():
    with alloc.reuse_freed_memory():
        with alloc.reuse_freed_memory():
            a = np.arange(1 << 20, dtype=np.float64)
        b = a * 2
    assert b[-1] == 2 * ((1 << 20) - 1) and alloc._depth == [0]
