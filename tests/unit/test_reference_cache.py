"""What a process keeps of locations and rules is read again by one request when it runs
out, while the others go on with what was kept."""

from __future__ import annotations

import threading
import time

from oms.adapters.db.reference import Reference, ReferenceCache


def test_one_request_reads_again_while_the_others_use_what_was_kept() -> None:
    cache = ReferenceCache(0.05)
    first, second = Reference(()), Reference(())
    assert cache.get(lambda: first) is first
    time.sleep(0.06)

    reading, release = threading.Event(), threading.Event()
    loads = []

    def slow_load() -> Reference:
        loads.append(1)
        reading.set()
        release.wait(5)
        return second

    got: list[Reference] = []
    reader = threading.Thread(target=lambda: got.append(cache.get(slow_load)))
    reader.start()
    assert reading.wait(5)
    # Meanwhile another request is not held up and does not read too.
    assert cache.get(slow_load) is first
    release.set()
    reader.join(5)
    assert got == [second]
    assert len(loads) == 1
    assert cache.get(slow_load) is second


def test_after_a_change_here_nothing_kept_is_used() -> None:
    cache = ReferenceCache(60)
    first, second = Reference(()), Reference(())
    assert cache.get(lambda: first) is first
    cache.forget()
    assert cache.get(lambda: second) is second
