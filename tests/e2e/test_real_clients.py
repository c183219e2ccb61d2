"""End to end with the real Mender clients from Debian: mender-client 3.4 (the device daemon),
mender-artifact 3.9 and mender-cli 1.9, against this server over HTTPS."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.conftest import EMAIL, PASSWORD
from tests.e2e.harness import (MENDER_ARTIFACT, MenderDevice, directory_artifact, run, single_file_artifact,
                               wait_for)

TIMEOUT = 90


def attrs(device_json: dict) -> dict:
    return {(a["scope"], a["name"]): a["value"] for a in device_json["attributes"]}


def admit(stack, dev: MenderDevice) -> dict:
    """Wait for the device's first (pending) auth request, accept it, wait for its inventory."""
    record = wait_for(lambda: stack.mgmt.device_by_identity("sn", dev.sn), TIMEOUT, "the device's auth request",
                      on_timeout=dev.log)
    assert record["status"] == "pending"
    stack.mgmt.accept(record)

    def inventory():
        r = stack.mgmt.get(f"/api/management/v1/inventory/devices/{record['id']}")
        if r.status_code == 200 and ("inventory", "os") in attrs(r.json()):
            return r.json()
        return None

    inv = wait_for(inventory, TIMEOUT, "the device's inventory", on_timeout=dev.log)
    a = attrs(inv)
    assert a[("identity", "sn")] == dev.sn
    assert a[("inventory", "os")] == "e2e-harness"
    assert sorted(a[("inventory", "network_interfaces")]) == ["eth-e2e", "lo"]
    assert a[("inventory", "device_type")] == "e2e-device"
    assert a[("inventory", "artifact_name")] == "e2e-factory"
    return record


def deploy_and_wait(stack, dev: MenderDevice, device_id: str, artifact_name: str, name: str) -> str:
    dep_id = stack.mgmt.deploy(name, artifact_name, [device_id])
    dev.check_update_now()

    def finished():
        r = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}")
        return r.status_code == 200 and r.json()["status"] == "finished"

    wait_for(finished, TIMEOUT, f"deployment {name} to finish", on_timeout=dev.log)
    return dep_id


def upload(stack, path) -> None:
    r = stack.cli("artifacts", "upload", "--no-progress", "--description", "e2e", str(path))
    assert r.returncode == 0, r.stdout + r.stderr


def main_path(stack, tmp_path, *, auth_key_pem=None, verify_key=None, sign_key=None, kind="single-file"):
    dev = MenderDevice(tmp_path / "device", stack.url, stack.cert, auth_key_pem=auth_key_pem,
                       verify_key=verify_key).start()
    try:
        record = admit(stack, dev)
        dest = tmp_path / "dest"
        dest.mkdir()
        name = f"e2e-app-{dev.sn}"
        extra = ["-k", str(sign_key)] if sign_key else []
        if kind == "single-file":
            art = single_file_artifact(tmp_path, name, "e2e-device", str(dest), b"hello from e2e\n", extra=extra)
        else:
            art = directory_artifact(tmp_path, name, "e2e-device", str(dest), {"a.txt": b"A\n", "b.txt": b"B\n"})
        upload(stack, art)
        dep_id = deploy_and_wait(stack, dev, record["id"], name, f"deploy-{dev.sn}")
        stats = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/statistics").json()
        assert stats["success"] == 1, (stats, dev.log()[-3000:])
        devices = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/devices").json()
        assert devices[0]["id"] == record["id"] and devices[0]["status"] == "success"
        if kind == "single-file":
            assert (dest / "app.conf").read_bytes() == b"hello from e2e\n"
        else:
            assert (dest / "a.txt").read_bytes() == b"A\n" and (dest / "b.txt").read_bytes() == b"B\n"
        assert dev.show_artifact() == name
        return record
    finally:
        dev.stop()


def test_main_path_rsa_device_single_file(stack, tmp_path):
    main_path(stack, tmp_path)


def test_ecdsa_p256_device_key(stack, tmp_path):
    key = run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]).stdout
    main_path(stack, tmp_path, auth_key_pem=key)


def test_ed25519_device_key(stack, tmp_path):
    key = run(["openssl", "genpkey", "-algorithm", "ed25519"]).stdout
    main_path(stack, tmp_path, auth_key_pem=key)


def test_directory_artifact(stack, tmp_path):
    main_path(stack, tmp_path, kind="directory")


def test_signed_artifact_with_verify_key(stack, tmp_path):
    key = tmp_path / "signing.pem"
    run(["openssl", "genrsa", "-traditional", "-out", str(key), "3072"]).check_returncode()
    pub = tmp_path / "signing.pub"
    run(["openssl", "rsa", "-in", str(key), "-pubout", "-out", str(pub)]).check_returncode()
    main_path(stack, tmp_path, verify_key=pub, sign_key=key)


def test_failed_install_reports_failure_and_log(stack, tmp_path):
    dev = MenderDevice(tmp_path / "device", stack.url, stack.cert).start()
    try:
        record = admit(stack, dev)
        name = f"e2e-broken-{dev.sn}"
        art = single_file_artifact(tmp_path, name, "e2e-device", "/dev/null/x", b"never installed\n")
        upload(stack, art)
        dep_id = deploy_and_wait(stack, dev, record["id"], name, f"broken-{dev.sn}")
        stats = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/statistics").json()
        assert stats["failure"] == 1
        log = wait_for(lambda: (lambda r: r.text if r.status_code == 200 else None)(
            stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/devices/{record['id']}/log")),
            TIMEOUT, "the deployment log", on_timeout=dev.log)
        assert "Update module terminated abnormally" in log or "exit status" in log
        assert dev.show_artifact() == "e2e-factory"
    finally:
        dev.stop()


def test_abort_while_downloading_rolls_back(stack, tmp_path):
    """Aborted after the device reported `downloading`: its next report gets 409 and it rolls back."""
    dev = MenderDevice(tmp_path / "device", stack.url, stack.cert).start()
    try:
        record = admit(stack, dev)
        name = f"e2e-aborted-{dev.sn}"
        dest = tmp_path / "dest"
        dest.mkdir()
        # a large payload keeps the device downloading long enough to abort it
        art = single_file_artifact(tmp_path, name, "e2e-device", str(dest), b"x" * (64 * 1024 * 1024),
                                   extra=["--compression", "none"])
        upload(stack, art)
        dep_id = stack.mgmt.deploy(f"abort-{dev.sn}", name, [record["id"]])
        dev.check_update_now()

        def downloading():
            r = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/statistics")
            return r.json()["downloading"] == 1

        wait_for(downloading, TIMEOUT, "the device to start downloading", interval=0.05, on_timeout=dev.log)
        r = stack.mgmt.put(f"/api/management/v1/deployments/deployments/{dep_id}/status", json={"status": "aborted"})
        assert r.status_code == 204, r.text
        wait_for(lambda: "409" in dev.log() or "aborted" in dev.log().lower(), TIMEOUT,
                 "the client to hear about the abort", on_timeout=dev.log)
        stats = stack.mgmt.get(f"/api/management/v1/deployments/deployments/{dep_id}/statistics").json()
        assert stats["aborted"] == 1 and stats["success"] == 0
        wait_for(lambda: dev.show_artifact() == "e2e-factory", 30, "the rollback")
        assert not (dest / "app.conf").exists()
    finally:
        dev.stop()


def test_mender_cli_login_lists_and_wrong_password(stack, tmp_path):
    bad = stack.cli("login", "--username", EMAIL, "--password", "wrong-password")
    assert bad.returncode != 0
    ok = stack.cli("login", "--username", EMAIL, "--password", PASSWORD)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    art = single_file_artifact(tmp_path, "e2e-listed", "e2e-device", str(tmp_path / "d"), b"listed\n")
    upload(stack, art)
    listed = stack.cli("artifacts", "list")
    assert listed.returncode == 0, listed.stderr
    assert "e2e-listed" in listed.stdout
    devices = stack.cli("devices", "list")
    assert devices.returncode == 0, devices.stderr


def test_artifact_metadata_matches_mender_artifact_read(stack, tmp_path):
    art = single_file_artifact(tmp_path, "e2e-meta", "e2e-device", "/tmp/x", b"meta\n",
                               extra=["--provides", "app.version:1.2", "--depends", "os.release:bookworm"])
    upload(stack, art)
    r = stack.mgmt.get("/api/management/v1/deployments/artifacts")
    assert r.status_code == 200, r.text
    listed = r.json()
    mine = next(a for a in listed if a["name"] == "e2e-meta")
    read = subprocess.run([MENDER_ARTIFACT, "read", "--no-progress", str(art)], capture_output=True, text=True)
    assert read.returncode == 0
    assert mine["device_types_compatible"] == ["e2e-device"]
    assert mine["artifact_provides"]["app.version"] == "1.2"
    assert mine["artifact_depends"]["os.release"] == ["bookworm"]
    assert "app.version: 1.2" in read.stdout


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory):
    """The same stack with artifacts in S3 (the real radosgw): devices download from presigned links."""
    from tests.artifacts import radosgw as rgw
    from tests.e2e.conftest import start_stack
    endpoint = rgw.acquire()
    try:
        env = {"DEPLOYMENTS_STORAGE_DEFAULT": "aws", "DEPLOYMENTS_AWS_URI": endpoint,
               "DEPLOYMENTS_AWS_EXTERNAL_URI": endpoint, "DEPLOYMENTS_AWS_AUTH_KEY": rgw.ACCESS_KEY,
               "DEPLOYMENTS_AWS_AUTH_SECRET": rgw.SECRET_KEY, "DEPLOYMENTS_STORAGE_BUCKET": "e2e-artifacts"}
        s = start_stack(tmp_path_factory.mktemp("e2e-s3"), env=env)
        try:
            yield s
        finally:
            s.server.stop()
    finally:
        rgw.release()


def test_main_path_with_s3_storage(s3_stack, tmp_path):
    main_path(s3_stack, tmp_path)
    r = s3_stack.mgmt.get("/api/management/v1/deployments/artifacts")
    artifact_id = r.json()[0]["id"]
    link = s3_stack.mgmt.get(f"/api/management/v1/deployments/artifacts/{artifact_id}/download").json()
    assert "X-Amz-Signature" in link["uri"]  # a presigned S3 link, not the server's own
