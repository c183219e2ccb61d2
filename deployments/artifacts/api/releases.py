"""Management API: releases (v1 and v2), the v2 artifacts list, release tags and update types."""

from __future__ import annotations

from flask import request
from flask.views import MethodView

from common.api import Blueprint, request_json
from common.app import services
from common.auth import visible_release_tags
from common.errors import BadRequest
from common.pagination import Page, paging_headers
from deployments.artifacts.api import caller_tenant, names_filter, parse_sort, render, string_filter
from deployments.artifacts.schemas import (ArtifactSchema, ArtifactsV2QueryArgsSchema, ReleaseDeleteQueryArgsSchema,
                                           ReleasesListQueryArgsSchema, ReleasesV1QueryArgsSchema,
                                           ReleasesV2QueryArgsSchema, ReleaseUpdateSchema)
from deployments.artifacts.store import RELEASE_SORT_FIELDS

v1 = Blueprint("deployments_releases_v1", __name__, url_prefix="/api/management/v1/deployments",
               description="Releases (management API v1, deprecated in Mender).")
v2 = Blueprint("deployments_artifacts_v2", __name__, url_prefix="/api/management/v2/deployments",
               description="Artifacts and releases (management API v2).")


def _v1_filters(args) -> dict:
    return {"name": string_filter(args.get("name")), "description": args.get("description") or None,
            "device_type": args.get("device_type") or None, "update_type": args.get("update_type") or None}


@v1.route("/deployments/releases")
class ReleasesV1(MethodView):
    @v1.arguments(ReleasesV1QueryArgsSchema, location="query")
    @v1.response(200)
    def get(self, args):
        """Every release with its artifacts."""
        items, _ = services().artifacts.list_releases(caller_tenant(), **_v1_filters(args))
        return [render.release_v1(r) for r in items]


@v1.route("/deployments/releases/list")
class ReleasesV1List(MethodView):
    @v1.arguments(ReleasesListQueryArgsSchema, location="query")
    @v1.response(200)
    def get(self, args):
        """A page of releases, with `X-Total-Count` and `Link`."""
        page = Page(args["page"], args["per_page"])
        items, total = services().artifacts.list_releases(
            caller_tenant(), **_v1_filters(args), sort=parse_sort(args.get("sort"), RELEASE_SORT_FIELDS),
            skip=page.skip, limit=page.limit)
        return [render.release_v1(r) for r in items], paging_headers(page, len(items), total)


@v2.route("/artifacts")
class ArtifactsV2(MethodView):
    @v2.arguments(ArtifactsV2QueryArgsSchema, location="query")
    @v2.response(200, ArtifactSchema(many=True))
    def get(self, args):
        """A page of artifacts sorted by name; exact or prefix (`foo*`) filters."""
        page = Page(args["page"], args["per_page"])
        items, total = services().artifacts.list(
            caller_tenant(), name=names_filter(args.get("name") or []),
            description=string_filter(args.get("description")), device_type=string_filter(args.get("device_type")),
            skip=page.skip, limit=page.limit)
        return [render.artifact(a) for a in items], paging_headers(page, len(items), total)


@v2.route("/deployments/releases")
class ReleasesV2(MethodView):
    @v2.arguments(ReleasesV2QueryArgsSchema, location="query")
    @v2.response(200)
    def get(self, args):
        """A page of releases: name prefix, tags (any), update type; sorted."""
        page = Page(args["page"], args["per_page"])
        name = args.get("name")
        items, total = services().artifacts.list_releases(
            caller_tenant(), name=("prefix", name) if name else None, tags=args.get("tag") or None,
            update_type=args.get("update_type") or None, sort=parse_sort(args.get("sort"), RELEASE_SORT_FIELDS),
            skip=page.skip, limit=page.limit, visible_tags=visible_release_tags())
        return [render.release(r) for r in items], paging_headers(page, len(items), total)

    @v2.arguments(ReleaseDeleteQueryArgsSchema, location="query")
    @v2.response(204)
    @v2.alt_response(409, description="Active deployments use some of the releases.")
    def delete(self, args):
        """Delete the named releases (all their artifacts)."""
        services().artifacts.delete_releases(caller_tenant(), args["name"])


@v2.route("/deployments/releases/<release_name>")
class ReleaseByName(MethodView):
    @v2.response(200)
    def get(self, release_name):
        """One release with its artifacts."""
        return render.release(services().artifacts.get_release(caller_tenant(), release_name))

    @v2.arguments(ReleaseUpdateSchema)
    @v2.response(204)
    def patch(self, body, release_name):
        """Update the release notes."""
        services().artifacts.set_release_notes(caller_tenant(), release_name, body["notes"])


@v2.route("/deployments/releases/<release_name>/tags")
class ReleaseTags(MethodView):
    @v2.response(204)
    @v2.alt_response(409, description="Too many distinct tags in use.")
    def put(self, release_name):
        """Replace the release's tags (a JSON list of strings)."""
        body = request_json() if request.get_data(cache=True).strip() else []
        if not isinstance(body, list):
            raise BadRequest("the body must be a JSON list of tags")
        services().artifacts.set_release_tags(caller_tenant(), release_name, body)


@v2.route("/releases/all/tags")
class AllTags(MethodView):
    @v2.response(200)
    def get(self):
        """Every release tag in use."""
        return services().artifacts.release_tags(caller_tenant())


@v2.route("/releases/all/types")
class AllTypes(MethodView):
    @v2.response(200)
    def get(self):
        """Every update type of the tenant's artifacts."""
        return services().artifacts.update_types(caller_tenant())
