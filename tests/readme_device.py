"""The device of the README test (tests/test_readme.py): it stands in for a Mender client where
the README says a device does something. Run inside the test's namespaces, where the README's
host name resolves to the server:

    python -m tests.readme_device pending STATE_DIR   # ask to be admitted (shows up as pending)
    python -m tests.readme_device update STATE_DIR    # take the pending deployment, install, report

`SERVER` (the README's variable) names the server; `SSL_CERT_FILE`, when set, the certificate to
trust. The key and identity are kept in STATE_DIR between the two steps.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tarfile
import time

from cryptography.hazmat.primitives import serialization

from tests.ui.device import HttpDevice

DEVICE_TYPE = "raspberrypi4"  # the README's `mender-artifact write … -t`


def _device(state_dir: str) -> HttpDevice:
    device = HttpDevice(os.environ["SERVER"], device_type=DEVICE_TYPE)
    device.http.verify = os.environ.get("SSL_CERT_FILE") or True
    device.http.trust_env = False  # REQUESTS_CA_BUNDLE would win over `verify`
    key_path, identity_path = os.path.join(state_dir, "device-key.pem"), os.path.join(state_dir, "identity.json")
    if os.path.exists(key_path):
        with open(key_path, "rb") as f:
            device.key = serialization.load_pem_private_key(f.read(), password=None)
        with open(identity_path) as f:
            device.identity = json.load(f)
    else:
        os.makedirs(state_dir, exist_ok=True)
        with open(key_path, "wb") as f:
            f.write(device.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        with open(identity_path, "w") as f:
            json.dump(device.identity, f)
    return device


def pending(state_dir: str) -> None:
    r = _device(state_dir).auth()
    if r.status_code != 401:
        sys.exit(f"device: the first auth request answered {r.status_code}, not 401 (pending): {r.text}")
    print("device: asked to be admitted (pending)")


def update(state_dir: str) -> None:
    device = _device(state_dir)
    r = device.auth()
    if r.status_code != 200:
        sys.exit(f"device: not accepted: auth request answered {r.status_code}: {r.text}")
    deployment = None
    for _ in range(20):
        deployment = device.next_deployment()
        if deployment:
            break
        time.sleep(0.5)
    if not deployment:
        sys.exit("device: no deployment for it")
    dep_id = deployment["id"]
    device.report(dep_id, "downloading")
    artifact = device.http.get(deployment["artifact"]["source"]["uri"], timeout=30)
    if artifact.status_code != 200:
        sys.exit(f"device: download answered {artifact.status_code}")
    with tarfile.open(fileobj=io.BytesIO(artifact.content)) as tar:
        names = tar.getnames()
    if names[:1] != ["version"]:
        sys.exit(f"device: the download is not a Mender artifact: {names[:5]}")
    for status in ("installing", "rebooting", "success"):
        r = device.report(dep_id, status)
        if r.status_code != 204:
            sys.exit(f"device: reporting {status} answered {r.status_code}: {r.text}")
    print(f"device: installed {deployment['artifact']['artifact_name']} (deployment {dep_id})")


if __name__ == "__main__":
    {"pending": pending, "update": update}[sys.argv[1]](sys.argv[2])
