"""The UI's server side: the shell and static files with security headers, and the cookie session."""

import base64
import hashlib
import json
import os
import posixpath
import re

import pytest

from tests.helpers import Operator
from ui.views import CONTENT_SECURITY_POLICY, STATIC_DIR

EMAIL, PASSWORD = "ui-op@example.com", "correct-horse-battery"
ME = "/api/management/v1/useradm/users/me"


@pytest.fixture
def ui_app(sqlite_app):
    with sqlite_app.app_context():
        sqlite_app.extensions["mender"].services.useradm.create_user(EMAIL, PASSWORD)
    return sqlite_app


@pytest.fixture
def ui_client(ui_app):
    return ui_app.test_client()


def set_cookies(response) -> dict:
    """name -> the raw Set-Cookie header of each cookie the response sets."""
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


def login(client, email=EMAIL, password=PASSWORD):
    return client.post("/ui/session", json={"email": email, "password": password})


def assert_security_headers(r):
    # a page's policy also allows its import map by hash (below); nothing else differs
    assert re.sub(r" 'sha256-[A-Za-z0-9+/]+=*'", "", r.headers["Content-Security-Policy"]) == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_shell_is_served_at_root_with_security_headers(sqlite_client):
    r = sqlite_client.get("/")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert_security_headers(r)
    html = r.get_data(as_text=True)
    assert re.search(r'<script type="module" src="/ui/static/js/app\.js\?v=[0-9a-f]{20}"></script>', html)
    # nothing inline but the import map: every other script has a src, no style elements or
    # attributes, no inline handlers
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == ['<script type="importmap">']
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)


def test_static_files_carry_the_headers_and_types(sqlite_client):
    r = sqlite_client.get("/ui/static/js/app.js")
    assert r.status_code == 200 and r.mimetype in ("text/javascript", "application/javascript")
    assert_security_headers(r)
    css = sqlite_client.get("/ui/static/app.css")
    assert css.status_code == 200 and css.mimetype == "text/css"


def _sha(rel: str) -> str:
    with open(os.path.join(STATIC_DIR, rel), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:20]


def _imports(rel: str, dynamic: bool = True) -> set[str]:
    """The modules `rel` imports (relative specifiers resolved; with `dynamic`, its `import()`s
    too), read independently of ui/assets.py."""
    with open(os.path.join(STATIC_DIR, rel)) as f:
        source = f.read()
    specs = re.findall(r"""(?:from|import)\s*["'](\.{1,2}/[^"']+)["']""", source)
    if dynamic:
        specs += re.findall(r"""import\s*\(\s*["'](\.{1,2}/[^"']+)["']""", source)
    return {posixpath.normpath(posixpath.join(posixpath.dirname(rel), s)) for s in specs}


def _reached(entry: str, dynamic: bool = True) -> set[str]:
    reached, todo = set(), [entry]
    while todo:
        rel = todo.pop()
        if rel not in reached:
            reached.add(rel)
            todo += sorted(_imports(rel, dynamic))
    return reached


@pytest.mark.parametrize("page, entry", [("/", "js/app.js"), ("/ui/terminal", "js/terminal.js")])
def test_pages_name_static_files_by_content_hash(sqlite_client, page, entry):
    r = sqlite_client.get(page)
    html = r.get_data(as_text=True)
    assert r.headers["Cache-Control"] == "no-cache"
    urls = re.findall(r'(?:href|src)="/ui/static/([^"?]+)\?v=([0-9a-f]+)"', html)
    assert urls and all(v == _sha(rel) for rel, v in urls)
    assert not re.search(r'(?:href|src)="/ui/static/[^"?]+"', html)  # none left without its hash
    # the import map names every module the entry reaches, each under its content hash, and the
    # page's policy allows exactly that inline script
    text = re.search(r'<script type="importmap">(.*?)</script>', html).group(1)
    mapped = json.loads(text)["imports"]
    assert mapped == {f"/ui/static/{m}": f"/ui/static/{m}?v={_sha(m)}" for m in _reached(entry)}
    # what the entry imports statically is preloaded; the pages it import()s when shown are not
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/static/([^"?]+)\?v=', html))
    assert preloaded == _reached(entry, dynamic=False)
    assert html.index('type="importmap"') < html.index("modulepreload") < html.index('<script type="module"')
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in r.headers["Content-Security-Policy"]
    # revalidation: the same page again is a 304
    again = sqlite_client.get(page, headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""


def test_static_files_under_their_current_hash_are_immutable(sqlite_client):
    current = _sha("js/api.js")
    r = sqlite_client.get(f"/ui/static/js/api.js?v={current}")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert_security_headers(r)
    # another hash (a page of an older or newer server) or none: served, but revalidated
    for url in ("/ui/static/js/api.js?v=0123456789abcdef0123", "/ui/static/js/api.js"):
        r = sqlite_client.get(url)
        assert r.status_code == 200 and "immutable" not in r.headers["Cache-Control"]
        assert "max-age=0" in r.headers["Cache-Control"]
    assert sqlite_client.get(f"/ui/static/nope.js?v={current}").status_code == 404


@pytest.mark.parametrize("path", ["/ui/static/nope.js", "/ui/static/../views.py", "/ui/static/%2e%2e/views.py",
                                  "/ui/static/js/../../../common/app.py"])
def test_static_rejects_unknown_and_escaping_paths(sqlite_client, path):
    r = sqlite_client.get(path)
    assert r.status_code == 404
    assert set(r.get_json()) == {"error", "request_id"}


def test_scripts_never_parse_html_from_data():
    """The scripts build the DOM with createElement/textContent only."""
    forbidden = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function")
    checked = 0
    for folder, _, files in os.walk(os.path.join(STATIC_DIR, "js")):
        for name in files:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                text = f.read()
            assert not forbidden.search(text), name
            checked += 1
    assert checked >= 10


def test_login_sets_httponly_strict_session_and_readable_csrf_cookie(ui_client):
    r = login(ui_client)
    assert r.status_code == 200
    assert r.headers["Cache-Control"] == "no-store"
    cookies = set_cookies(r)
    jwt_cookie, csrf_cookie = cookies["JWT"], cookies["csrf"]
    assert "HttpOnly" in jwt_cookie and "SameSite=Strict" in jwt_cookie and "Path=/" in jwt_cookie
    assert "Secure" not in jwt_cookie  # plain HTTP here
    assert "HttpOnly" not in csrf_cookie and "SameSite=Strict" in csrf_cookie
    assert csrf_cookie.startswith(f"csrf={r.get_json()['csrf']};")
    assert len(r.get_json()["csrf"]) >= 32
    me = ui_client.get(ME)
    assert me.status_code == 200 and me.get_json()["email"] == EMAIL


def test_login_over_https_sets_secure_cookies(ui_app):
    client = ui_app.test_client()
    r = client.post("/ui/session", json={"email": EMAIL, "password": PASSWORD}, base_url="https://localhost")
    assert r.status_code == 200
    for header in set_cookies(r).values():
        assert "Secure" in header


def test_wrong_credentials_are_401_without_cookies(ui_client):
    for email, password in [(EMAIL, "wrong-password"), ("nobody@example.com", PASSWORD)]:
        r = login(ui_client, email, password)
        assert r.status_code == 401
        assert set(r.get_json()) == {"error", "request_id"}
        assert "Set-Cookie" not in r.headers
    assert ui_client.get(ME).status_code == 401


@pytest.mark.parametrize("kwargs, status", [
    ({"data": "email=a&password=b", "content_type": "application/x-www-form-urlencoded"}, 415),
    ({"data": "{not json", "content_type": "application/json"}, 400),
    ({"json": ["a", "b"]}, 400),
    ({"json": {"email": EMAIL}}, 400),
    ({"json": {"email": "", "password": PASSWORD}}, 400),
    ({"json": {"email": EMAIL, "password": 12345678}}, 400),
    ({"json": {"email": EMAIL, "password": PASSWORD, "admin": True}}, 400),
    ({"json": {"email": EMAIL, "password": "x" * 2000}}, 400),
])
def test_login_rejects_bad_input(ui_client, kwargs, status):
    r = ui_client.post("/ui/session", **kwargs)
    assert r.status_code == status, r.data
    assert set(r.get_json()) == {"error", "request_id"}


def test_cookie_session_writes_need_the_csrf_header(ui_client):
    csrf = login(ui_client).get_json()["csrf"]
    new_user = {"email": "second@example.com", "password": "another-long-password"}
    r = ui_client.post("/api/management/v1/useradm/users", json=new_user)
    assert r.status_code == 403 and r.get_json()["error"] == "missing or invalid CSRF token"
    r = ui_client.post("/api/management/v1/useradm/users", json=new_user, headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403
    r = ui_client.post("/api/management/v1/useradm/users", json=new_user, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.data


def test_logout_needs_csrf_then_revokes_the_token_and_clears_cookies(ui_client):
    r = login(ui_client)
    csrf = r.get_json()["csrf"]
    token = set_cookies(r)["JWT"].split(";")[0].split("=", 1)[1]
    assert ui_client.delete("/ui/session").status_code == 403
    assert ui_client.get(ME).status_code == 200  # still logged in
    r = ui_client.delete("/ui/session", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 204
    cleared = set_cookies(r)
    assert "Expires=Thu, 01 Jan 1970" in cleared["JWT"] and "Expires=Thu, 01 Jan 1970" in cleared["csrf"]
    assert ui_client.get(ME).status_code == 401
    # the token itself is revoked, not only forgotten by the browser
    assert ui_client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_logout_without_a_session_or_with_a_dead_token_just_clears(ui_client, ui_app):
    assert ui_client.delete("/ui/session").status_code == 204
    ui_client.set_cookie("JWT", "not-a-token")
    ui_client.set_cookie("csrf", "c")
    assert ui_client.delete("/ui/session", headers={"X-CSRF-Token": "c"}).status_code == 204


def test_bearer_clients_are_unaffected_by_the_csrf_check(ui_app):
    op = Operator(ui_app.test_client(), EMAIL, PASSWORD)
    op.login()
    r = op.post("/api/management/v1/useradm/users", json={"email": "third@example.com", "password": "yet-another-password"})
    assert r.status_code == 201, r.data


def _limited_app(make_app, rate="3/minute"):
    from common.clock import FrozenClock
    clock = FrozenClock()
    app = make_app("sqlite", USERADM_RATE_LIMIT_LOGIN=rate, _CLOCK=clock)
    with app.app_context():
        app.extensions["mender"].services.useradm.create_user(EMAIL, PASSWORD)
    return app, clock


def test_ui_logins_are_rate_limited_per_email(make_app):
    app, clock = _limited_app(make_app)
    client = app.test_client()
    for i in range(3):
        r = client.post("/ui/session", json={"email": EMAIL, "password": "wrong"}, environ_base={"REMOTE_ADDR": f"10.0.0.{i}"})
        assert r.status_code == 401
    r = client.post("/ui/session", json={"email": EMAIL.upper(), "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.1.1"})
    assert r.status_code == 429
    assert set(r.get_json()) == {"error", "request_id"} and int(r.headers["Retry-After"]) > 0
    clock.advance(61)
    assert login(client).status_code == 200


def test_ui_logins_are_rate_limited_per_address(make_app):
    app, _ = _limited_app(make_app)
    client = app.test_client()
    for i in range(3):
        r = client.post("/ui/session", json={"email": f"guess{i}@example.com", "password": "x"}, environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert r.status_code == 401
    assert client.post("/ui/session", json={"email": EMAIL, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.7"}).status_code == 429
    assert client.post("/ui/session", json={"email": EMAIL, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code == 200


def test_ui_and_api_logins_share_the_counters(make_app):
    import base64
    app, _ = _limited_app(make_app)
    client = app.test_client()
    wrong = base64.b64encode(f"{EMAIL}:wrong".encode()).decode()
    for i in range(2):
        r = client.post("/api/management/v1/useradm/auth/login", headers={"Authorization": f"Basic {wrong}"},
                        environ_base={"REMOTE_ADDR": f"10.0.2.{i}"})
        assert r.status_code == 401
    r = client.post("/ui/session", json={"email": EMAIL, "password": "wrong"}, environ_base={"REMOTE_ADDR": "10.0.2.9"})
    assert r.status_code == 401
    # three failures in all, over both endpoints: the email is locked on both
    assert client.post("/ui/session", json={"email": EMAIL, "password": PASSWORD}, environ_base={"REMOTE_ADDR": "10.0.3.1"}).status_code == 429
    ok = base64.b64encode(f"{EMAIL}:{PASSWORD}".encode()).decode()
    assert client.post("/api/management/v1/useradm/auth/login", headers={"Authorization": f"Basic {ok}"},
                       environ_base={"REMOTE_ADDR": "10.0.3.2"}).status_code == 429


def test_ui_logins_unlimited_when_the_limit_is_disabled(make_app):
    app, _ = _limited_app(make_app, rate="")
    client = app.test_client()
    for _ in range(5):
        assert client.post("/ui/session", json={"email": EMAIL, "password": "wrong"}).status_code == 401
    assert login(client).status_code == 200
