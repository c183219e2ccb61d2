"""A worker's start-up heap, frozen (gunicorn.conf.py's post_worker_init).

After the app is loaded a worker holds ~100,000 long-lived objects (modules, classes, the Flask
app, the services, the OpenAPI machinery); CPython's full collections traverse every one of them,
and requests trigger those collections as they allocate: a device poll allocates several times
what a bare Flask request does (in-process, a full collection of the app's heap took ~30 ms of
CPU, one every ~10,000 polls). Frozen, those objects sit in the permanent generation: full
collections traverse what requests allocated since, and nothing else changes (gc.freeze; the
garbage of the start-up is collected first so that it is not kept)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect the start-up's garbage, then move every object alive to the permanent generation;
    return how many objects are frozen now."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
