"""The layering rules that hold transitively: a service module never imports Flask (nor
Werkzeug, flask-smorest, webargs), whatever it imports in turn."""

from __future__ import annotations

import glob
import os
import subprocess
import sys

from tests.helpers import ROOT

from common.app import SERVICE_PACKAGES

WEB = ("flask", "werkzeug", "flask_smorest", "flask_limiter", "webargs")


def service_modules() -> list[str]:
    """Every `service*.py` and `model.py` of the service packages (and their sub-packages), and
    every module of their `store/`."""
    paths = []
    packages = [p for p in SERVICE_PACKAGES if p != "ui"] + ["deployments/artifacts"]
    for package in packages:
        paths += glob.glob(os.path.join(ROOT, package, "service*.py"))
        paths += glob.glob(os.path.join(ROOT, package, "model.py"))
        paths += glob.glob(os.path.join(ROOT, package, "store", "*.py"))
    return sorted(os.path.relpath(p, ROOT)[:-3].replace(os.sep, ".").removesuffix(".__init__") for p in paths)


PROBE = """
import importlib, sys
for name in {modules!r}:
    importlib.import_module(name)
print(sorted(m for m in sys.modules if m.split(".")[0] in {web!r})[:5])
"""


def web_modules_imported_by(modules: list[str]) -> list[str]:
    """The web modules in sys.modules after importing `modules` in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", PROBE.format(web=WEB, modules=modules)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return eval(result.stdout)  # a list of module names, printed by the probe


def test_no_service_or_store_module_imports_flask():
    modules = service_modules()
    assert {"deployments.service", "deployments.artifacts.service", "useradm.service"} <= set(modules)
    assert len(modules) >= 25
    if web_modules_imported_by(modules):  # name the culprits
        culprits = {m: found for m in modules if (found := web_modules_imported_by([m]))}
        raise AssertionError(f"service modules importing a web framework: {culprits}")


def test_the_probe_sees_an_import_of_flask():
    # the probe must be able to fail: common.auth imports Flask
    assert "flask" in web_modules_imported_by(["common.auth"])
