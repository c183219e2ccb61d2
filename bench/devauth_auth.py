"""Benchmark (not a test): device authentication requests per second for an accepted RSA-3072
and an Ed25519 device, next to the cost of one bare signature verification of each kind.

    .venv/bin/python bench/devauth_auth.py [--seconds 5] [--db-url mongodb://host:27017/bench] [--organization]

Requests go through the whole WSGI stack (Flask test client, in-process, one thread) on a
fresh SQLite database (or the database --db-url names: a real MongoDB); each returns a freshly
signed token. With --organization, each device is measured twice: in the default organization
(empty tenant token) and in an organization, presenting its tenant token (verified on each
request).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: E402

from common.app import create_app  # noqa: E402
from tests.helpers import Device, sign_body  # noqa: E402


def rate(fn, seconds: float) -> tuple[float, int]:
    """Calls per second of fn() over about `seconds` (after a short warm-up)."""
    for _ in range(3):
        fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        fn()
        n += 1
    return n / (time.perf_counter() - start), n


def bare_verify(key, body: bytes):
    sig = __import__("base64").b64decode(sign_body(key, body))
    pub = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda: pub.verify(sig, body, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return lambda: pub.verify(sig, body, ec.ECDSA(hashes.SHA256()))
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return lambda: pub.verify(sig, body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    parser.add_argument("--db-url", default="", help="MENDER_DB_URL (default: SQLite in a temp dir)")
    parser.add_argument("--server-key", choices=["ed25519", "rsa3072"], default="ed25519",
                        help="device-token signing key: the default generated Ed25519 key (EdDSA), "
                             "or an RSA-3072 key (RS256, as Mender's production docs generate)")
    parser.add_argument("--organization", action="store_true",
                        help="also measure devices of an organization presenting its tenant token")
    args = parser.parse_args()

    data_dir = tempfile.mkdtemp(prefix="devauth-bench-")
    cfg = {"MENDER_DATA_DIR": data_dir, "MENDER_LOG_LEVEL": "warning",
           "MENDER_DB_URL": args.db_url or "sqlite:///" + os.path.join(data_dir, "mender.db")}
    cfg["MENDER_METRICS_ENABLED"] = False
    if args.server_key == "rsa3072":
        from cryptography.hazmat.primitives import serialization
        path = os.path.join(data_dir, "server-rsa3072.pem")
        with open(path, "wb") as f:
            f.write(rsa.generate_private_key(public_exponent=65537, key_size=3072).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        cfg["DEVICEAUTH_SERVER_PRIV_KEY_PATH"] = path
    app = create_app(cfg)
    ctx = app.extensions["mender"]
    ctx.ensure_migrated()
    client = app.test_client()
    svc = ctx.services.devauth
    server_alg = svc.tokens.keys.algorithm

    orgs = [("", "")]
    if args.organization:
        with app.app_context():
            org = ctx.services.tenantadm.create_tenant("bench")
        orgs.append((org.id, org.tenant_token))
    rows = []
    for (label, kind), (tenant, tenant_token) in [(k, o) for k in (("RSA-3072", "rsa"), ("Ed25519", "ed25519"))
                                                  for o in orgs]:
        label = f"{label}{' +tenant token' if tenant else ''}"
        device = Device(client, key_kind=kind, tenant_token=tenant_token)
        assert device.auth().status_code == 401
        with app.app_context():
            record = next(d for d in svc.list_devices(tenant, per_page=500)[0] if d.identity == device.identity)
            svc.set_auth_set_status(tenant, record.id, record.auth_sets[0].id, "accepted")
        body = device.auth_body()
        headers = {"X-MEN-Signature": sign_body(device.key, body), "Authorization": f"Bearer {tenant_token}"}

        def auth_request():
            r = client.post(Device.AUTH_PATH, data=body, content_type="application/json", headers=headers)
            assert r.status_code == 200, r.status_code

        auth_rate, auth_n = rate(auth_request, args.seconds)
        verify_rate, verify_n = rate(bare_verify(device.key, body), args.seconds / 2)
        rows.append((label, auth_rate, auth_n, verify_rate, 1e6 / verify_rate, 1e6 / auth_rate))

    token_rate, _ = rate(lambda: svc.tokens.issue("", "bench"), args.seconds / 2)
    print(f"database: {cfg['MENDER_DB_URL'].split(':')[0]}; device token algorithm: {server_alg}; one thread; "
          f"{args.seconds:g} s per row; python {sys.version.split()[0]}")
    print(f"{'device key':<24} | {'auth req/s':>10} | {'µs/auth req':>11} | {'requests':>8} | "
          f"{'bare verify/s':>13} | {'µs/verify':>9} | {'verify share':>12}")
    print("-" * 106)
    for label, auth_rate, auth_n, verify_rate, verify_us, auth_us in rows:
        print(f"{label:<24} | {auth_rate:>10.0f} | {auth_us:>11.0f} | {auth_n:>8d} | {verify_rate:>13.0f} | "
              f"{verify_us:>9.1f} | {verify_us / auth_us:>11.1%}")
    print(f"(token signing alone, {server_alg}: {token_rate:.0f}/s = {1e6 / token_rate:.0f} µs)")


if __name__ == "__main__":
    main()
