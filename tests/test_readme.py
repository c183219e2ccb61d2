"""The README, tried literally: its shell blocks run in order, in one shell, against a live server.

How the README marks its blocks (an HTML comment on the line before a fenced block; GitHub does
not render it). Every ```sh/```bash/```shell block must carry one, so that a block added later is
either run or skipped for a stated reason:

    <!-- readme-test: run -->            run the block in the session shell (variables carry over,
                                         as in a newcomer's terminal)
    <!-- readme-test: serve -->          the block starts the server in the foreground: stop the
                                         server a previous `serve` block started (the newcomer's
                                         Ctrl-C), start this one in the background, wait until
                                         port 8080 answers
    <!-- readme-test: skip: REASON -->   not run, for the reason given

and two markers without a block, where the README says a device acts (tests/readme_device.py
stands in for the Mender client):

    <!-- readme-test: device-pending --> a new device asks to be admitted
    <!-- readme-test: device-update -->  the device takes its deployment, installs it, reports success

The session runs in a copy of the clone (the repository's files symlinked into a scratch
directory, so that `./data`, the certificate and the artifact land there), as root, inside a
private network namespace (its own loopback: the README's port 8080 is free whatever else runs
on the machine) and mount namespace (an /etc/hosts that resolves `mender.example.net`, the
README's host name, to the loopback). The password prompts read lines the test feeds on stdin.
Nothing else is changed: the commands are the README's, byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.helpers import ROOT

README = os.path.join(ROOT, "README.md")
HOST_NAME = "mender.example.net"
STDIN_LINES = ["readme-test-password", "acme-admin-password", "ops-password-1", "ops-password-2"]
SHELL_LANGS = {"sh", "bash", "shell", "console"}
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*([a-z-]+)(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```\s*([A-Za-z0-9_-]*)")
TIMEOUT = 600


@dataclass
class Step:
    kind: str          # run, serve, skip, device-pending, device-update
    line: int          # README line of the marker
    code: str = ""     # the block, dedented
    reason: str = ""


def readme_steps(text: str) -> list[Step]:
    """The README's marked blocks and device markers, in order. AssertionError for a shell block
    without a marker, or a marker that does not precede a block when it should."""
    steps: list[Step] = []
    pending: Step | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER.match(line)
        if m:
            kind, reason = m.group(1), m.group(2) or ""
            assert kind in {"run", "serve", "skip", "device-pending", "device-update"}, \
                f"README line {i + 1}: unknown readme-test marker {kind!r}"
            step = Step(kind, i + 1, reason=reason)
            if kind.startswith("device-"):
                steps.append(step)
            else:
                assert pending is None, f"README line {pending.line}: marker without a block"
                assert kind != "skip" or reason, f"README line {i + 1}: a skip needs a reason"
                pending = step
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            indent, lang = f.group(1), f.group(2).lower()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i].lstrip())
                i += 1
            i += 1  # the closing fence
            if lang in SHELL_LANGS:
                assert pending is not None, (
                    f"README line {f.start() or i - len(body) - 1}: a shell block without a readme-test "
                    f"marker; put `<!-- readme-test: run -->` (or serve, or skip: REASON) on the line "
                    f"before it (see tests/test_readme.py)")
                pending.code = "\n".join(body) + "\n"
                steps.append(pending)
            else:
                assert pending is None, f"README line {pending.line}: marker before a {lang or 'plain'} block"
            pending = None
            continue
        i += 1
    assert pending is None, f"README line {pending.line}: marker without a block"
    return steps


def test_every_shell_block_is_classified():
    with open(README) as f:
        steps = readme_steps(f.read())
    kinds = [s.kind for s in steps]
    assert kinds.count("run") >= 8 and kinds.count("serve") >= 2
    assert "device-pending" in kinds and "device-update" in kinds


def test_markers_are_enforced():
    with pytest.raises(AssertionError, match="without a readme-test marker"):
        readme_steps("text\n```sh\necho hi\n```\n")
    with pytest.raises(AssertionError, match="skip needs a reason"):
        readme_steps("<!-- readme-test: skip -->\n```sh\necho hi\n```\n")
    steps = readme_steps("<!-- readme-test: run -->\n   ```sh\n   echo hi\n   ```\n```json\n{}\n```\n")
    assert steps[0].code == "echo hi\n"


_PRELUDE = r"""
set -eo pipefail
set -m   # each background job in its own process group: a serve block stops as a whole
ip link set lo up
mount --bind "$READMETEST_HOSTS" /etc/hosts
cd "$READMETEST_FARM"
serve_pid=""
stop_server() {
  if [ -n "$serve_pid" ]; then  # as Ctrl-C: the whole group, and wait until every process left
    kill -TERM -- "-$serve_pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 -- "-$serve_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
    serve_pid=""
  fi
}
trap stop_server EXIT
trap 'echo "readme-test: command failed (exit $?) in the block above: $BASH_COMMAND" >&2' ERR
start_server() {  # $1: the block's file
  stop_server
  bash "$1" > "$READMETEST_RESULTS/server.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 600); do
    if curl -sk -o /dev/null --max-time 2 http://127.0.0.1:8080/ || curl -sk -o /dev/null --max-time 2 https://127.0.0.1:8080/; then
      return 0
    fi
    kill -0 "$serve_pid" 2>/dev/null || { echo "readme-test: the server exited" >&2; tail -50 "$READMETEST_RESULTS/server.log" >&2; return 1; }
    sleep 0.2
  done
  echo "readme-test: the server did not answer on port 8080" >&2; return 1
}
"""

_EPILOGUE = r"""
declare -p DEVICE_ID AUTH_SET_ID DEPLOYMENT_ID SERVER > "$READMETEST_RESULTS/variables.sh"
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/management/v1/deployments/deployments/$DEPLOYMENT_ID" \
  > "$READMETEST_RESULTS/deployment.json"
curl -sf -H "Authorization: Bearer $TOKEN" "$SERVER/api/management/v1/deployments/deployments" \
  > "$READMETEST_RESULTS/deployments.json"
echo "readme-test: done"
"""


def session_script(steps: list[Step], blocks_dir: str) -> str:
    """One bash session: every `run` block inline, `serve` blocks started in the background."""
    out = [_PRELUDE]
    for n, step in enumerate(steps):
        out.append(f'\necho "readme-test: --- {step.kind} (README line {step.line})" >&2\n')
        if step.kind == "run":
            out.append(step.code)
        elif step.kind == "serve":
            path = os.path.join(blocks_dir, f"serve-{n}.sh")
            with open(path, "w") as f:
                f.write(step.code)
            out.append(f'start_server "{path}"\n')
        elif step.kind in ("device-pending", "device-update"):
            action = step.kind.split("-", 1)[1]
            out.append(f'SERVER="$SERVER" .venv/bin/python -m tests.readme_device {action} '
                       f'"$READMETEST_RESULTS/device"\n')
    out.append(_EPILOGUE)
    return "".join(out)


def _require_root_tools() -> None:
    if not os.path.isfile("/etc/hosts"):
        raise RuntimeError("/etc/hosts is missing (debootstrap writes none): the README test maps the README's "
                           "host name by bind-mounting a copy over it")
    missing = [b for b in ("unshare", "ip", "curl", "openssl", "mender-artifact", "mender-cli") if not shutil.which(b)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: scripts/test.sh installs the Debian packages")
    if os.geteuid() != 0:
        raise RuntimeError("the README test runs its session in network and mount namespaces: run the suite as root")


def make_farm(farm: str) -> None:
    """A scratch directory that looks like the clone: every top-level entry symlinked, except the
    ones the README's commands create."""
    os.makedirs(farm)
    for name in os.listdir(ROOT):
        if name in ("data", ".git", ".pytest_cache") or name.endswith((".crt", ".key", ".mender")):
            continue
        os.symlink(os.path.join(ROOT, name), os.path.join(farm, name))


def test_readme_runs_as_written(tmp_path):
    _require_root_tools()
    with open(README) as f:
        text = f.read()
    assert f"SERVER=https://{HOST_NAME}:8080" in text
    steps = readme_steps(text)
    farm, results, home = tmp_path / "clone", tmp_path / "results", tmp_path / "home"
    make_farm(str(farm))
    results.mkdir()
    home.mkdir()
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {HOST_NAME}\n::1 localhost\n")
    script = tmp_path / "session.sh"
    script.write_text(session_script(steps, str(tmp_path)))
    # a newcomer's environment: none of this machine's CA-bundle overrides (CURL_CA_BUNDLE wins
    # over the SSL_CERT_FILE the README exports), no server settings
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MENDER_", "PROMETHEUS_", "SSL_CERT", "DEPLOYMENTS_", "USERADM_", "DEVICEAUTH_"))
           and "CA_BUNDLE" not in k and "CA_CERT" not in k}
    env.update({"HOME": str(home), "READMETEST_FARM": str(farm), "READMETEST_RESULTS": str(results),
                "READMETEST_HOSTS": str(hosts), "PYTHONDONTWRITEBYTECODE": "1"})
    proc = subprocess.Popen(["unshare", "--net", "--mount", "--fork", "bash", str(script)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=str(tmp_path))
    try:
        output, _ = proc.communicate("".join(line + "\n" for line in STDIN_LINES).encode(), timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    log = output.decode(errors="replace")
    server_log = (results / "server.log").read_text(errors="replace") if (results / "server.log").exists() else ""
    assert proc.returncode == 0 and "readme-test: done" in log, \
        f"the README session failed (exit {proc.returncode}):\n{log[-6000:]}\n--- server log:\n{server_log[:2500]}\n…\n{server_log[-2500:]}"

    variables = (results / "variables.sh").read_text()
    for name in ("DEVICE_ID", "AUTH_SET_ID", "DEPLOYMENT_ID"):
        assert re.search(rf'{name}="[0-9a-f-]{{36}}"', variables), variables
    deployment = json.loads((results / "deployment.json").read_text())
    assert deployment["status"] == "finished" and deployment["artifact_name"] == "app-1.2", deployment
    assert '"success":1' in log.replace(" ", "")  # the README's statistics call printed it
    names = {d["name"] for d in json.loads((results / "deployments.json").read_text())}
    assert {"app 1.2", "app 1.2 tomorrow"} <= names
    assert "ops@example.net" in log  # the admin CLI block listed the user it created
    assert not list((results / "device").glob("*.mender"))
    assert sys.executable  # the session used the clone's own .venv, as the README does
