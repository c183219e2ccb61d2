"""create_app's deferred work: the OpenAPI document is written when first read, and a rule's URL
builders are compiled when it first builds a URL; both give what the eager versions gave."""

from __future__ import annotations

import threading

from werkzeug.routing import Map, Rule

from common.app import LazyBuilderRule


def test_the_openapi_document_read_first_by_several_threads_is_whole_for_each(make_app):
    """Threads of a worker reading the document at once: one writes it, the others wait for it
    (none serves a part). Read alone from another app, it is the same document."""
    app = make_app("sqlite")
    documents: list[dict] = []
    start = threading.Barrier(4)

    def read() -> None:
        start.wait()
        documents.append(app.test_client().get("/api/openapi.json").get_json())

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    alone = make_app("sqlite").test_client().get("/api/openapi.json").get_json()
    assert len(documents) == 4 and all(d == alone for d in documents)
    paths = alone["paths"]
    assert "/api/devices/v1/deviceconnect/connect" in paths  # deviceconnect's websocket, documented later
    assert paths["/api/management/v1/useradm/auth/login"]["post"]["security"] == [{"Login": []}]  # last step



def test_urls_built_from_lazily_compiled_rules_equal_werkzeugs(make_app):
    rules = ["/a/<int:n>/b/<path:rest>", "/api/<tenant>/x", "/static/<filename>", "/p/<x>/<y>"]
    lazy = Map([LazyBuilderRule(r, endpoint=r) for r in rules]).bind("localhost")
    eager = Map([Rule(r, endpoint=r) for r in rules]).bind("localhost")
    values = {"n": 7, "rest": "c/d e", "tenant": "t-1", "filename": "ä b.js", "x": "1/2", "y": "?&"}
    for r in rules:
        for extra in ({}, {"q": "1 2", "z": ["a", "b"]}):
            args = {k: v for k, v in values.items() if f"{k}>" in r} | extra
            assert lazy.build(r, args) == eager.build(r, args)
            assert lazy.build(r, args, force_external=True) == eager.build(r, args, force_external=True)
    app = make_app("sqlite")
    assert isinstance(next(app.url_map.iter_rules("api-docs.openapi_json")), LazyBuilderRule)
    with app.test_request_context():
        from flask import url_for
        assert url_for("api-docs.openapi_json") == "/api/openapi.json"
        assert url_for("swagger_ui_static", filename="x y.css") == "/api/docs/static/x%20y.css"
