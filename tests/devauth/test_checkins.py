"""The check-in batcher (devauth/checkins.py) on its own: what `pending()` counts."""

import threading

from devauth.checkins import CheckIns


def test_pending_counts_a_batch_until_it_is_written():
    # a flush takes the batch out of memory first and writes it after: until the write has
    # ended, those check-ins are still pending (a reader of the store would not see them yet)
    started, release, written = threading.Event(), threading.Event(), []

    def write(tenant, ids, ts):
        started.set()
        assert release.wait(10)
        written.append((tenant, ids))

    check_ins = CheckIns(write, interval=3600)
    check_ins.record("t", "a", 1.0)
    check_ins.record("t", "b", 2.0)
    check_ins.record("u", "c", 3.0)
    assert check_ins.pending() == 3
    flusher = threading.Thread(target=check_ins.flush)
    flusher.start()
    try:
        assert started.wait(10)
        assert check_ins.pending() == 3  # taken out of memory, not yet written
    finally:
        release.set()
        flusher.join(10)
    assert check_ins.pending() == 0
    assert sorted(written) == [("t", ["a", "b"]), ("u", ["c"])]
    check_ins.close()


def test_a_failed_write_keeps_its_check_ins_pending():
    calls = []

    def write(tenant, ids, ts):
        calls.append(ids)
        if len(calls) == 1:
            raise OSError("disk full")

    check_ins = CheckIns(write, interval=3600)
    check_ins.record("t", "a", 1.0)
    check_ins.flush()
    assert check_ins.pending() == 1
    check_ins.flush()
    assert check_ins.pending() == 0 and calls == [["a"], ["a"]]
    check_ins.close()
