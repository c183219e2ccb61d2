"""Management API v1alpha1: "software" — releases seen through the shared Release/Manifest view.
This server has releases only; `kind=manifest` is always empty."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields, validate

from common.api import Blueprint
from common.app import services
from common.errors import BadRequest
from common.pagination import Page, PaginationQueryArgsSchema, paging_headers
from deployments.artifacts.api import caller_tenant, names_filter, parse_sort, render
from deployments.artifacts.schemas import _Query

blp = Blueprint("deployments_software", __name__, url_prefix="/api/management/v1alpha1/deployments",
                description="Software (releases) — experimental API.")

KINDS = ("release", "manifest")


class SoftwareQueryArgsSchema(PaginationQueryArgsSchema):
    class Meta:
        unknown = "exclude"
    name = fields.List(fields.String())
    name_prefix = fields.String()
    kind = fields.String(validate=validate.OneOf(KINDS))
    tag = fields.List(fields.String())
    update_type = fields.String()
    sort = fields.String()


class SoftwareTagsQueryArgsSchema(_Query):
    kind = fields.String(validate=validate.OneOf(KINDS))


@blp.route("/software")
class Software(MethodView):
    @blp.arguments(SoftwareQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args):
        """A page of software (releases) with `X-Total-Count` and `Link`."""
        page = Page(args["page"], args["per_page"])
        if args.get("name") and args.get("name_prefix"):
            raise BadRequest("name and name_prefix are mutually exclusive")
        if args.get("kind") == "manifest":
            return [], paging_headers(page, 0, 0)
        name = ("prefix", args["name_prefix"]) if args.get("name_prefix") else \
            names_filter([n.rstrip("*") for n in args.get("name") or []])
        items, total = services().artifacts.list_releases(
            caller_tenant(), name=name, tags=args.get("tag") or None,
            update_type=args.get("update_type") or None,
            sort=parse_sort(args.get("sort"), ("name", "modified", "tags")), skip=page.skip, limit=page.limit)
        body = [render.software(r) for r in items]
        return body, paging_headers(page, len(body), total)


@blp.route("/software/tags")
class SoftwareTags(MethodView):
    @blp.arguments(SoftwareTagsQueryArgsSchema, location="query")
    @blp.response(200)
    def get(self, args):
        """Every tag used on software (of a kind)."""
        if args.get("kind") == "manifest":
            return []
        return services().artifacts.release_tags(caller_tenant())
