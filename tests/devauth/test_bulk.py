"""Bulk preauthorization: the management endpoint and `flask devauth preauthorize`."""

from __future__ import annotations

import csv
import io
import json

from tests.helpers import Device

URL = "/api/management/v2/devauth/preauthorizations"


def csv_file(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def test_csv_upload_one_result_per_row(client, operator):
    a, b = Device(client), Device(client, key_kind="rsa2048")
    data = csv_file([["mac", "sn", "pubkey"],
                     [a.identity["mac"], a.identity["sn"], a.pubkey],
                     [b.identity["mac"], b.identity["sn"], b.pubkey],
                     [a.identity["mac"], a.identity["sn"], b.pubkey],  # same identity again
                     ["02:00:00:00:00:09", "x", "not a key"],
                     ["", "", ""],  # blank line: skipped
                     ["only", "two"]])
    r = operator.post(URL, data=data, content_type="text/csv")
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert (body["created"], body["conflict"], body["invalid"]) == (2, 1, 2)
    assert [(x["row"], x["status"]) for x in body["results"]] == [
        (1, "created"), (2, "created"), (3, "conflict"), (4, "invalid"), (6, "invalid")]
    assert body["results"][2]["device_id"] == body["results"][0]["device_id"]
    assert "pubkey" in body["results"][3]["reason"] and "cells" in body["results"][4]["reason"]
    # the devices are admitted on their first request
    assert a.auth().status_code == 200 and a.id == body["results"][0]["device_id"]
    assert b.auth().status_code == 200


def test_json_upload_and_identity_data_column(client, operator):
    a, b = Device(client), Device(client)
    r = operator.post(URL, json=[{"identity_data": a.identity, "pubkey": a.pubkey},
                                 {"identity_data": "nope", "pubkey": a.pubkey}, 5, {"pubkey": a.pubkey},
                                 {"identity_data": {"x": 1}, "pubkey": a.pubkey, "extra": 1}])
    body = r.get_json()
    assert [x["status"] for x in body["results"]] == ["created", "invalid", "invalid", "invalid", "invalid"]
    data = csv_file([["identity_data", "pubkey"], [json.dumps(b.identity), b.pubkey], ["{bad", b.pubkey]])
    body = operator.post(URL, data=data, content_type="text/csv").get_json()
    assert [x["status"] for x in body["results"]] == ["created", "invalid"]
    assert b.auth().status_code == 200


def test_bad_files(client, operator):
    assert operator.post(URL, data=b"x", content_type="text/plain").status_code == 415
    for data in [b"", b"mac,sn\n1,2\n", b"pubkey,pubkey\n", b"\xff\xfe", b"a,pubkey\n\x00,1\n",
                 b"identity_data,mac,pubkey\n", b'pubkey\n"' + b"x" * 70000 + b'"\n']:
        r = operator.post(URL, data=data, content_type="text/csv")
        assert r.status_code == 400, data[:30]
        assert r.get_json()["error"]
    for data in [b"{}", b"[", b"[" * 100000]:
        assert operator.post(URL, data=data, content_type="application/json").status_code == 400
    assert operator.get("/api/management/v2/devauth/devices/count").get_json() == {"count": 0}


def test_cli_preauthorize(app, client, operator, tmp_path):
    devices = [Device(client) for _ in range(3)]
    path = tmp_path / "devices.csv"
    path.write_bytes(csv_file([["mac", "sn", "pubkey"]] + [[d.identity["mac"], d.identity["sn"], d.pubkey]
                                                         for d in devices]))
    runner = app.test_cli_runner()
    r = runner.invoke(args=["devauth", "preauthorize", str(path)])
    assert r.exit_code == 0, r.output
    assert "3 rows: 3 created, 0 conflict, 0 invalid" in r.output
    assert r.output.count(": created ") == 3
    r = runner.invoke(args=["devauth", "preauthorize", "--quiet", str(path)])
    assert r.exit_code == 0 and "3 rows: 0 created, 3 conflict, 0 invalid" in r.output
    assert all(d.auth().status_code == 200 for d in devices)

    bad = tmp_path / "devices.json"
    bad.write_text(json.dumps([{"identity_data": {"a": 1}, "pubkey": "x"}]))
    r = runner.invoke(args=["devauth", "preauthorize", str(bad)])
    assert r.exit_code == 1 and "row 1: invalid" in r.output and "1 invalid" in r.output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[")
    r = runner.invoke(args=["devauth", "preauthorize", str(garbage)])
    assert r.exit_code == 1 and "malformed JSON" in r.output
    r = runner.invoke(args=["devauth", "preauthorize", str(tmp_path / "missing.csv")])
    assert r.exit_code == 2


def test_cli_tenant_option(app, operator, tmp_path):
    d = Device(None)
    path = tmp_path / "x.json"
    path.write_text(json.dumps([{"identity_data": d.identity, "pubkey": d.pubkey}]))
    r = app.test_cli_runner().invoke(args=["devauth", "preauthorize", "--tenant", "t9", str(path)])
    assert r.exit_code == 0, r.output
    svc = app.extensions["mender"].services.devauth
    assert svc.count_devices("t9") == 1 and svc.count_devices("") == 0


def test_cli_max_devices(app):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["migrate"]).exit_code == 0  # a read-only command needs a database
    r = runner.invoke(args=["devauth", "max-devices"])
    assert r.exit_code == 0 and r.stdout.strip() == "max_devices: -1"
    assert runner.invoke(args=["devauth", "max-devices", "5"]).stdout.strip() == "max_devices: 5"
    assert runner.invoke(args=["devauth", "max-devices", "--tenant", "t1", "0"]).stdout.strip() == "max_devices: 0"
    assert app.extensions["mender"].services.devauth.max_devices("") == 5
    assert runner.invoke(args=["devauth", "max-devices", "--clear"]).stdout.strip() == "max_devices: -1"
    assert runner.invoke(args=["devauth", "max-devices", "-2"]).exit_code == 2
    assert runner.invoke(args=["devauth", "max-devices", "--clear", "3"]).exit_code == 2
    assert app.extensions["mender"].services.devauth.max_devices("t1") == 0
