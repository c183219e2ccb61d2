"""Artifacts and releases: upload and parsing of .mender files, artifact storage, download links."""


def init_app(app, api, ctx) -> None:
    """Build the artifacts service and register its blueprints."""
