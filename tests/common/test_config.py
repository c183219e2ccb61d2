"""Configuration: defaults, environment, overrides, and the README table."""

import os

import pytest

from common.config import SETTINGS, load_config, markdown_table
from common.errors import ConfigError
from tests.helpers import ROOT


def test_defaults():
    cfg = load_config({}, environ={})
    assert cfg["MENDER_REQUEST_SIZE_LIMIT"] == 1024 * 1024
    assert cfg["DEPLOYMENTS_STORAGE_MAX_IMAGE_SIZE"] == 10 * 1024 ** 3
    assert cfg.data_dir == os.path.abspath("./data")
    assert cfg.db_url == "sqlite:///" + os.path.join(os.path.abspath("./data"), "mender.db")


def test_environment_is_parsed_by_type():
    cfg = load_config({}, environ={"MENDER_REQUEST_SIZE_LIMIT": "2048", "MENDER_METRICS_ENABLED": "false",
                                   "MENDER_DB_URL": "mongodb://db/x"})
    assert cfg["MENDER_REQUEST_SIZE_LIMIT"] == 2048
    assert cfg["MENDER_METRICS_ENABLED"] is False
    assert cfg.db_url == "mongodb://db/x"


def test_overrides_win_over_environment():
    cfg = load_config({"MENDER_REQUEST_SIZE_LIMIT": 7}, environ={"MENDER_REQUEST_SIZE_LIMIT": "2048"})
    assert cfg["MENDER_REQUEST_SIZE_LIMIT"] == 7


def test_bad_value_names_the_variable():
    with pytest.raises(ConfigError, match="MENDER_REQUEST_SIZE_LIMIT"):
        load_config({}, environ={"MENDER_REQUEST_SIZE_LIMIT": "lots"})
    with pytest.raises(ConfigError, match="MENDER_METRICS_ENABLED"):
        load_config({}, environ={"MENDER_METRICS_ENABLED": "perhaps"})


def test_readme_documents_every_setting():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in readme]
    assert not missing, f"README lacks: {missing}"
    assert markdown_table() in readme, "README's config table is out of date: run `flask --app wsgi config-table`"


def test_process_model_defaults_follow_the_database(monkeypatch):
    """SQLite: more workers with fewer app threads each (its writer lock's holder waits for its
    process's GIL after every statement); MongoDB: the previous 2 x cores x 8."""
    from flask import Flask

    from common.asgi import AsgiFront
    from common.config import default_threads, default_workers

    sqlite, mongo = load_config({}, environ={}), load_config({"MENDER_DB_URL": "mongodb://db/x"}, environ={})
    assert (default_workers(sqlite, 2), default_threads(sqlite)) == (8, 2)
    assert (default_workers(mongo, 2), default_threads(mongo)) == (4, 8)
    assert default_workers(sqlite, 0) == 4  # cpu_count() may say 0 or None: one core's worth
    assert default_workers(sqlite, 64) == 32 and default_workers(mongo, 64) == 128  # one writer: capped

    monkeypatch.delenv("MENDER_WORKER_THREADS", raising=False)
    assert AsgiFront(Flask(__name__)).threads == 2
    app = Flask(__name__)
    app.config["MENDER_DB_URL"] = "mongodb://db/x"
    assert AsgiFront(app).threads == 8
    monkeypatch.setenv("MENDER_WORKER_THREADS", "5")
    assert AsgiFront(app).threads == 5
