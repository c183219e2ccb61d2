"""The management web UI: a static single-page app served at `/`, and its session endpoint."""


def init_app(app, api, ctx) -> None:
    """Register the UI's blueprint (pages, static files, /ui/session) and its login rate limits."""
    from ui.login_limits import LoginLimits
    from ui.views import blp
    app.register_blueprint(blp)
    app.extensions["ui_login_limits"] = LoginLimits.install(app, ctx)
