"""`flask useradm …` commands through app.test_cli_runner(), and the admin bootstrap hook."""

from __future__ import annotations

from tests.helpers import GunicornServer
from tests.useradm.conftest import LOGIN, basic
from useradm.model import User


def login_status(app, email, password):
    return app.test_client().post(LOGIN, headers=basic(email, password)).status_code


def test_create_user_with_password_option(app, runner):
    r = runner.invoke(args=["useradm", "create-user", "--email", "Admin@Example.com", "--password", "admin-pass-1"])
    assert r.exit_code == 0, r.output
    user_id = r.stdout.strip()
    assert len(user_id) == 36
    assert login_status(app, "admin@example.com", "admin-pass-1") == 200
    r = runner.invoke(args=["useradm", "list-users"])
    assert r.exit_code == 0
    line = r.stdout.strip().split("\t")
    assert line[0] == user_id and line[1] == "admin@example.com" and line[3] != "-"


def test_create_user_password_from_stdin(app, runner):
    r = runner.invoke(args=["useradm", "create-user", "--email", "s@example.com"], input="from-stdin-pw\n")
    assert r.exit_code == 0, r.output
    assert login_status(app, "s@example.com", "from-stdin-pw") == 200


def test_create_user_errors(runner):
    r = runner.invoke(args=["useradm", "create-user", "--email", "x@example.com"], input="")
    assert r.exit_code != 0 and "no password" in r.output
    r = runner.invoke(args=["useradm", "create-user", "--email", "x@example.com", "--password", "short"])
    assert r.exit_code == 1 and "at least 8" in r.output
    r = runner.invoke(args=["useradm", "create-user", "--email", "nope", "--password", "long-enough"])
    assert r.exit_code == 1 and "email" in r.output
    runner.invoke(args=["useradm", "create-user", "--email", "x@example.com", "--password", "long-enough"])
    r = runner.invoke(args=["useradm", "create-user", "--email", "X@example.com", "--password", "long-enough"])
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(args=["useradm", "create-user", "--password", "long-enough"])
    assert r.exit_code == 2  # --email is required


def test_set_password_revokes_tokens(app, runner):
    runner.invoke(args=["useradm", "create-user", "--email", "p@example.com", "--password", "first-pass"])
    client = app.test_client()
    token = client.post(LOGIN, headers=basic("p@example.com", "first-pass")).get_data(as_text=True)
    r = runner.invoke(args=["useradm", "set-password", "--email", "P@example.com"], input="second-pass\n")
    assert r.exit_code == 0, r.output
    assert client.get("/api/management/v1/useradm/users/me",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert login_status(app, "p@example.com", "first-pass") == 401
    assert login_status(app, "p@example.com", "second-pass") == 200
    r = runner.invoke(args=["useradm", "set-password", "--email", "ghost@example.com", "--password", "whatever-1"])
    assert r.exit_code == 1 and "not found" in r.output
    r = runner.invoke(args=["useradm", "set-password", "--email", "p@example.com", "--password", "short"])
    assert r.exit_code == 1


def test_tenants_in_cli(app, runner):
    org = runner.invoke(args=["tenantadm", "create-org", "--name", "Acme"]).stdout.split("id: ")[1].split()[0]
    r = runner.invoke(args=["useradm", "create-user", "--email", "t@example.com", "--password", "tenant-pass",
                            "--tenant", org])
    assert r.exit_code == 0, r.output
    assert runner.invoke(args=["useradm", "list-users"]).stdout == ""
    assert runner.invoke(args=["useradm", "list-users", "--tenant", "default"]).stdout == ""
    assert "t@example.com" in runner.invoke(args=["useradm", "list-users", "--tenant", org]).stdout
    r = runner.invoke(args=["useradm", "create-user", "--email", "u@example.com", "--password", "tenant-pass",
                            "--tenant", "0123456789abcdef01234567"])
    assert r.exit_code == 1 and "organization not found" in r.output
    r = runner.invoke(args=["useradm", "list-users", "--tenant", "no/such"])
    assert r.exit_code == 2 and "tenant id" in r.output


def test_list_users_pages_through_everyone(make_app, backend):
    app = make_app(backend)
    svc = app.extensions["mender"].services.useradm
    # many users without 600 argon2 runs: insert through the store, as a restored backup would
    svc.ensure_ready()
    for i in range(501):
        svc._store.insert_user(User(id=f"id-{i:04d}", tenant_id="", email=f"u{i}@example.com", password_hash="x",
                                    created_ts=1000.0 + i, updated_ts=1000.0 + i))
    r = app.test_cli_runner().invoke(args=["useradm", "list-users"])
    assert r.exit_code == 0
    assert len(r.stdout.strip().splitlines()) == 501


def run_hooks(app):
    for hook in app.extensions["mender"].startup_hooks:
        hook()


def test_bootstrap_admin_once(make_app, backend, tmp_path):
    data_dir = str(tmp_path / "shared")
    cfg = dict(MENDER_DATA_DIR=data_dir, MENDER_ADMIN_EMAIL="Root@Example.com", MENDER_ADMIN_PASSWORD="root-password")
    app = make_app(backend, **cfg)
    run_hooks(app)
    assert login_status(app, "root@example.com", "root-password") == 200
    run_hooks(app)  # idempotent
    r = app.test_cli_runner().invoke(args=["useradm", "list-users"])
    assert len(r.stdout.strip().splitlines()) == 1


def test_bootstrap_skipped_when_users_exist_or_unset(make_app, backend):
    app = make_app(backend, MENDER_ADMIN_EMAIL="root@example.com", MENDER_ADMIN_PASSWORD="root-password")
    app.test_cli_runner().invoke(args=["useradm", "create-user", "--email", "first@example.com",
                                       "--password", "first-pass"])
    run_hooks(app)
    assert login_status(app, "root@example.com", "root-password") == 401
    app2 = make_app(backend)  # no MENDER_ADMIN_EMAIL: nothing happens
    run_hooks(app2)
    assert app2.test_cli_runner().invoke(args=["useradm", "list-users"]).stdout == ""
    app3 = make_app(backend, MENDER_ADMIN_EMAIL="root@example.com", MENDER_ADMIN_PASSWORD="short")
    run_hooks(app3)  # logged, not raised: the server keeps starting
    assert app3.test_cli_runner().invoke(args=["useradm", "list-users"]).stdout == ""


def test_bootstrap_concurrent_processes_create_one_admin(tmp_path):
    """Several apps (as several processes would) on one SQLite file run the hook: one admin."""
    import multiprocessing
    data_dir = str(tmp_path / "d")
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(4)

    def worker():
        from common.app import create_app
        from tests.helpers import backend_config
        cfg = backend_config("sqlite", data_dir)
        cfg.update(MENDER_ADMIN_EMAIL="root@example.com", MENDER_ADMIN_PASSWORD="root-password")
        app = create_app(cfg)
        barrier.wait()
        run_hooks(app)

    procs = [ctx.Process(target=worker) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    from common.app import create_app
    from tests.helpers import backend_config
    app = create_app(backend_config("sqlite", data_dir))
    out = app.test_cli_runner().invoke(args=["useradm", "list-users"]).stdout
    assert len(out.strip().splitlines()) == 1 and "root@example.com" in out


def test_bootstrap_under_gunicorn(tmp_path):
    with GunicornServer(str(tmp_path / "g"), env={"MENDER_ADMIN_EMAIL": "root@example.com",
                                                  "MENDER_ADMIN_PASSWORD": "root-password"}) as server:
        import requests
        r = requests.post(server.url + LOGIN, headers=basic("root@example.com", "root-password"), timeout=10)
        assert r.status_code == 200, server.log()
        assert r.headers["Content-Type"] == "application/jwt"
        r = requests.get(server.url + "/api/management/v1/useradm/users/me",
                         headers={"Authorization": f"Bearer {r.text}"}, timeout=10)
        assert r.status_code == 200 and r.json()["email"] == "root@example.com"


def test_cli_says_which_data_and_refuses_to_create_a_database_for_reads(tmp_path):
    """`flask --app /abs/path/wsgi.py useradm list-users` from another directory: the data
    directory is printed, and no `./data` is created behind the operator's back."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT
    env = {k: v for k, v in os.environ.items() if not k.startswith("MENDER_")}
    flask = [sys.executable, "-m", "flask", "--app", os.path.join(ROOT, "wsgi.py")]
    for args in (["useradm", "list-users"], ["useradm", "set-password", "--email", "a@b.c", "--password", "x" * 10],
                 ["devauth", "max-devices"]):
        r = subprocess.run(flask + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert f"data directory: {tmp_path / 'data'}" in r.stderr and "no database at" in r.stderr
        assert os.listdir(tmp_path) == []
    r = subprocess.run(flask + ["migrate"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and f"data directory: {tmp_path / 'data'}" in r.stderr
    r = subprocess.run(flask + ["useradm", "list-users"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout == ""
    mode = os.stat(tmp_path / "data").st_mode & 0o777
    assert mode == 0o700 and os.stat(tmp_path / "data" / "mender.db").st_mode & 0o777 == 0o600


def test_each_command_reads_one_line_of_a_shared_stdin(tmp_path):
    """Found by the README test: `printf 'a\\nb\\n' | (create-user; set-password)` gave the second
    command nothing, the first one's buffered readline having taken both lines."""
    import subprocess
    import sys
    from tests.helpers import ROOT
    env = {**__import__("os").environ, "MENDER_DATA_DIR": str(tmp_path / "data"), "MENDER_LOG_LEVEL": "warning"}
    flask = [sys.executable, "-m", "flask", "--app", "wsgi", "useradm"]
    script = (f"{' '.join(flask)} create-user --email one@example.com && "
              f"{' '.join(flask)} set-password --email one@example.com")
    r = subprocess.run(["bash", "-c", script], input=b"first-password\nsecond-password\n", cwd=ROOT, env=env,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert b"password changed for one@example.com" in r.stdout
