"""Management API: GET /api/management/v1/auditlogs/logs and …/logs/export (CSV, streamed)."""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView

from common.api import Blueprint
from common.app import services
from common.auth import current_identity
from common.pagination import Page, paging_headers
from auditlogs.api.render import csv_lines, render_entry
from auditlogs.model import EntryFilter
from auditlogs.schemas import ExportQueryArgsSchema, LogsQueryArgsSchema

blp = Blueprint("auditlogs_management", __name__, url_prefix="/api/management/v1/auditlogs",
                description="The organization's audit log.")

_FILTERS = ("created_after", "created_before", "actor_id", "actor_type", "actor_email", "object_id",
            "object_type", "object_deployment_name")


def entry_filter(args: dict) -> EntryFilter:
    return EntryFilter(**{name: args.get(name) for name in _FILTERS})


def list_response(tenant: str, args: dict) -> Response:
    page = Page(args["page"], args["per_page"])
    entries, total = services().auditlogs.list(tenant, entry_filter(args), newest_first=args["sort"] == "desc",
                                               skip=page.skip, limit=page.limit)
    response = jsonify([render_entry(e) for e in entries])
    response.headers.update(paging_headers(page, len(entries), total))
    return response


@blp.route("/logs")
class Logs(MethodView):
    @blp.arguments(LogsQueryArgsSchema, location="query")
    @blp.response(200, description="A page of entries, newest first unless `sort=asc` (Link, X-Total-Count).")
    @blp.alt_response(400, description="Invalid query argument.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(403, description="The caller's roles do not allow reading the audit log.")
    def get(self, args):
        """List audit log entries"""
        return list_response(current_identity().tenant, args)


@blp.route("/logs/export")
class LogsExport(MethodView):
    @blp.arguments(ExportQueryArgsSchema, location="query")
    @blp.response(200, description="CSV (text/csv), streamed: a header line, then one line per entry.")
    @blp.alt_response(400, description="Invalid query argument.")
    @blp.alt_response(401, description="Missing or invalid token.")
    @blp.alt_response(403, description="The caller's roles do not allow reading the audit log.")
    def get(self, args):
        """Export audit log entries as CSV"""
        entries = services().auditlogs.export(current_identity().tenant, entry_filter(args),
                                              newest_first=args["sort"] == "desc", limit=args["limit"])
        body = csv_lines(entries, args["format_separator"], args.get("ignore") or ())
        return Response(body, status=200, mimetype="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="auditlogs.csv"'},
                        direct_passthrough=True)
