"""A worker freezes its start-up heap (common.heap, gunicorn.conf.py's post_worker_init)."""

import gc
import os
import subprocess
import sys

from common.heap import freeze_startup_heap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_freezing_keeps_the_start_up_heap_out_of_collections_and_collects_its_garbage():
    class Node:
        pass

    alive = [{"k": [1, 2]} for _ in range(100)]
    garbage = Node()
    garbage.self = garbage  # a cycle nothing refers to: start-up garbage
    ref = __import__("weakref").ref(garbage)
    del garbage
    try:
        frozen = freeze_startup_heap()
        assert ref() is None  # collected, not frozen
        assert frozen == gc.get_freeze_count() and frozen > len(alive)
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(o) in tracked for o in alive)  # full collections no longer traverse them
        new = [{"k": [3]}]
        assert id(new[0]) in {id(o) for o in gc.get_objects()}  # what is allocated later is collected
        assert alive[0]["k"] == [1, 2]
    finally:
        gc.unfreeze()
    assert id(alive[0]) in {id(o) for o in gc.get_objects()}


def test_gunicorns_post_worker_init_freezes_the_heap(tmp_path):
    """gunicorn calls post_worker_init once the worker loaded the app (before it serves)."""
    code = ("import gc, runpy; ns = runpy.run_path('gunicorn.conf.py'); assert gc.get_freeze_count() == 0;"
            " ns['post_worker_init'](None); print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MENDER_DATA_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) > 1000
