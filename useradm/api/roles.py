"""Roles (Mender's RBAC): /api/management/v1|v2/useradm/roles… and v2 permission_sets.

A role is a set of permission sets (`common.permissions`), each over everything or limited to
device groups / release tags (`permission_sets_with_scope`, Mender's v2 shape; v1 takes and
shows the same, its legacy HTTP `permissions` list must be empty). Built-in roles are listed
first and cannot be changed or removed.
"""

from __future__ import annotations

from flask import Response, jsonify
from flask.views import MethodView

from common import permissions
from common.api import Blueprint
from common.app import services
from common.auth import current_identity
from useradm.api import render
from useradm.schemas import RoleSchema, RoleUpdateSchema

blp = Blueprint("useradm_roles", __name__, url_prefix="/api/management/v1/useradm",
                description="Roles of the caller's organization.")
blp_v2 = Blueprint("useradm_roles_v2", __name__, url_prefix="/api/management/v2/useradm",
                   description="Roles of the caller's organization (v2: permission sets with scopes).")


def _routes(bp: Blueprint, version: str) -> None:
    base = f"/api/management/{version}/useradm/roles"

    @bp.route("/roles")
    class Roles(MethodView):
        @bp.response(200, description="The built-in roles, then the organization's custom roles by name.")
        @bp.alt_response(401, description="Missing or invalid token.")
        def get(self):
            return jsonify([render.role(r) for r in services().useradm.list_roles(current_identity().tenant)])

        @bp.arguments(RoleSchema)
        @bp.response(201, description="Created; Location names the role.")
        @bp.alt_response(400, description="Invalid name, permission set or scope.")
        @bp.alt_response(401, description="Missing or invalid token.")
        @bp.alt_response(403, description="The caller's roles do not allow it (ManageUsers).")
        @bp.alt_response(409, description="A role of that name exists (or is built in).")
        @bp.alt_response(422, description="The organization has the maximum number of roles.")
        def post(self, body):
            role = services().useradm.create_role(current_identity().tenant, body["name"], body.get("description"),
                                                  body.get("permission_sets_with_scope"))
            return Response(status=201, headers={"Location": f"{base}/{role.name}"})


    @bp.route("/roles/<string:id>")
    class RoleById(MethodView):
        @bp.response(200, description="The role.")
        @bp.alt_response(401, description="Missing or invalid token.")
        @bp.alt_response(404, description="No such role.")
        def get(self, id):
            return jsonify(render.role(services().useradm.get_role(current_identity().tenant, id)))

        @bp.arguments(RoleUpdateSchema)
        @bp.response(202, description="Updated; it counts at each holder's next request.")
        @bp.alt_response(400, description="Invalid permission set or scope.")
        @bp.alt_response(401, description="Missing or invalid token.")
        @bp.alt_response(403, description="The caller's roles do not allow it (ManageUsers).")
        @bp.alt_response(404, description="No such role.")
        @bp.alt_response(409, description="A built-in role.")
        def put(self, body, id):
            services().useradm.update_role(current_identity().tenant, id, body.get("description"),
                                           body.get("permission_sets_with_scope"))
            return Response(status=202)

        @bp.response(204, description="Removed (idempotent).")
        @bp.alt_response(401, description="Missing or invalid token.")
        @bp.alt_response(403, description="The caller's roles do not allow it (ManageUsers).")
        @bp.alt_response(409, description="A built-in role, or a role some user holds.")
        def delete(self, id):
            services().useradm.delete_role(current_identity().tenant, id)
            return Response(status=204)



_routes(blp, "v1")
_routes(blp_v2, "v2")


@blp_v2.route("/permission_sets")
class PermissionSets(MethodView):
    @blp_v2.response(200, description="The permission sets roles are made of, with the scopes each may be limited to.")
    @blp_v2.alt_response(401, description="Missing or invalid token.")
    def get(self):
        return jsonify([render.permission_set(s) for s in permissions.PERMISSION_SETS.values()
                        if s.name != permissions.BASIC])
