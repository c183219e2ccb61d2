"""The management web UI: a static single-page app served at `/`, and its session endpoint."""


def init_app(app, api, ctx) -> None:
    """Register the UI's blueprint (pages, static files, /ui/session) and limit its logins."""
    from ui.views import blp, install_login_limits
    app.register_blueprint(blp)
    install_login_limits(app, ctx)
