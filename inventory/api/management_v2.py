"""Management API v2 (filters, search, saved filters, statistics) and v2alpha1 (identity search)."""

from __future__ import annotations

import re

from flask import jsonify, url_for
from flask.views import MethodView

from common.api import Blueprint
from common.bulk_api import BULK_RESULT, SELECTION_BODY, SELECTION_PROPERTIES, render_bulk
from common.app import services
from common.auth import visible_device_groups
from common.errors import BadRequest
from common.pagination import Page, page_from_args
from inventory.api import caller, empty, json_body, optional_json_body, paged, render
from inventory.model import MAX_NAME_LENGTH, SCOPE_IDENTITY, SCOPE_TAGS, Cond
from inventory.query import parse_search_params


def search_response(tenant: str, body) -> object:
    query = parse_search_params(body)
    devices, total = services().inventory.search(tenant, query, visible_device_groups())
    return paged([render.device(d) for d in devices], Page(query.page, query.per_page), total)


def make_blueprint() -> Blueprint:
    blp = Blueprint("inventory_management_v2", __name__, url_prefix="/api/management/v2/inventory",
                    description="Device inventory: filters, search, saved filters, statistics.")

    @blp.route("/filters/attributes")
    class FilterAttributes(MethodView):
        @blp.response(200, description="`[{name, scope, count}]` over a sample of 5,000 devices, at most 500.")
        def get(self):
            tenant, _ = caller()
            return jsonify([render.attribute_count(c) for c in services().inventory.filter_attributes(tenant)])

    @blp.route("/filters/search")
    class FiltersSearch(MethodView):
        @blp.response(200, description="A page of devices matching every predicate; X-Total-Count, Link.")
        @blp.alt_response(400, description="Malformed body, unknown operator, per_page above 500…")
        def post(self):
            tenant, _ = caller()
            return search_response(tenant, optional_json_body())

    @blp.route("/filters")
    class Filters(MethodView):
        @blp.response(200, description="A page of saved filters `{id, name, terms}`, ordered by name.")
        @blp.alt_response(400, description="Invalid paging.")
        def get(self):
            tenant, _ = caller()
            page = page_from_args()
            filters, total = services().inventory.list_filters(tenant, page.page, page.per_page)
            return paged([render.saved_filter(f) for f in filters], page, total)

        @blp.response(201, description="Saved; Location names the new filter.")
        @blp.alt_response(400, description="Invalid name or terms.")
        @blp.alt_response(409, description="A filter with this name exists.")
        def post(self):
            tenant, _ = caller()
            saved = services().inventory.create_filter(tenant, json_body())
            response = jsonify(render.saved_filter(saved))
            response.status_code = 201
            response.headers["Location"] = url_for(".FilterById", filter_id=saved.id)
            return response

    @blp.route("/filters/<filter_id>")
    class FilterById(MethodView):
        @blp.response(200, description="The saved filter.")
        @blp.alt_response(404, description="No such filter.")
        def get(self, filter_id):
            tenant, _ = caller()
            return jsonify(render.saved_filter(services().inventory.get_filter(tenant, filter_id)))

        @blp.response(204, description="Deleted.")
        @blp.alt_response(404, description="No such filter.")
        def delete(self, filter_id):
            tenant, _ = caller()
            services().inventory.delete_filter(tenant, filter_id)
            return empty(204)

    @blp.route("/filters/<filter_id>/search")
    class FilterSearch(MethodView):
        @blp.response(200, description="A page of devices matching the saved filter; X-Total-Count, Link.")
        @blp.alt_response(400, description="Invalid paging.")
        @blp.alt_response(404, description="No such filter.")
        def get(self, filter_id):
            tenant, _ = caller()
            page = page_from_args()
            devices, total = services().inventory.run_filter(tenant, filter_id, page.page, page.per_page,
                                                            visible_device_groups())
            return paged([render.device(d) for d in devices], page, total)

    @blp.route("/groups/<name>/devices")
    class GroupSelection(MethodView):
        @blp.doc(requestBody=SELECTION_BODY)
        @blp.response(200, description=BULK_RESULT)
        @blp.alt_response(400, description="Invalid group name or selection, or more devices than "
                                           "INVENTORY_BULK_MAX_DEVICES.")
        def patch(self, name):
            """Put the selected devices into a group (one request for any number of devices)"""
            tenant, _ = caller()
            return jsonify(render_bulk(services().inventory.group_selection(tenant, name, json_body())))

        @blp.doc(requestBody=SELECTION_BODY)
        @blp.response(200, description=BULK_RESULT)
        @blp.alt_response(400, description="Invalid group name or selection.")
        def delete(self, name):
            """Take the selected devices out of a group"""
            tenant, _ = caller()
            return jsonify(render_bulk(services().inventory.ungroup_selection(tenant, name, json_body())))

    @blp.route("/devices/tags")
    class SelectionTags(MethodView):
        @blp.doc(requestBody={"required": True, "content": {"application/json": {"schema": {
            "type": "object", "properties": {**SELECTION_PROPERTIES, "tags": {"type": "array", "items": {
                "type": "object", "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}}}}}}})
        @blp.response(200, description=BULK_RESULT)
        @blp.alt_response(400, description="Invalid tags or selection.")
        def patch(self):
            """Merge tags into the selected devices' tags (an empty value removes a tag)"""
            tenant, _ = caller()
            return jsonify(render_bulk(services().inventory.tag_selection(tenant, json_body())))

    @blp.route("/statistics")
    class Statistics(MethodView):
        @blp.response(200, description="`{devices_by_status: {accepted|pending: {standard, micro, system}}}`.")
        def get(self):
            tenant, _ = caller()
            return jsonify(render.statistics(services().inventory.statistics(tenant)))

    return blp


def make_alpha_blueprint() -> Blueprint:
    blp = Blueprint("inventory_management_v2alpha1", __name__, url_prefix="/api/management/v2alpha1/inventory",
                    description="Device inventory: search by identity prefix (experimental, as Mender).")

    @blp.route("/identities/search")
    class IdentitiesSearch(MethodView):
        @blp.response(200, description="Devices whose identity (or tags/name) attribute starts with a prefix.")
        @blp.alt_response(400, description="Malformed body.")
        def post(self):
            tenant, _ = caller()
            body = json_body()
            if not isinstance(body, dict):
                raise BadRequest("body: must be a JSON object")
            unknown = set(body) - {"scope", "name", "value_prefix", "attributes", "page", "per_page"}
            if unknown:
                raise BadRequest(f"{sorted(unknown)[0]}: unknown field")
            scope, name, prefix = body.get("scope"), body.get("name"), body.get("value_prefix")
            if scope not in (SCOPE_IDENTITY, SCOPE_TAGS):
                raise BadRequest("scope: must be identity or tags")
            if not isinstance(name, str) or not name or len(name) > MAX_NAME_LENGTH:
                raise BadRequest("name: must be a non-empty string")
            if not isinstance(prefix, str):
                raise BadRequest("value_prefix: must be a string")
            rest = {k: body[k] for k in ("attributes", "page", "per_page") if k in body}
            query = parse_search_params(rest)
            query.conds.append(Cond(scope, name, "regex", regex="^(?:" + re.escape(prefix) + ")",
                                    on_id=(scope, name) == (SCOPE_IDENTITY, "id")))
            devices, total = services().inventory.search(tenant, query, visible_device_groups())
            return paged([render.device(d) for d in devices], Page(query.page, query.per_page), total)

    return blp
