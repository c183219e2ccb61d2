// What the signed-in user may do: its roles' permission sets (GET users/me, roles, permission_sets),
// so that pages hide or disable what the server would refuse, saying why. The server decides anyway.

import { get } from "./api.js";

const USERADM = "/api/management/v2/useradm";

export async function loadPermissions(me) {
  const [roles, sets] = await Promise.all([get(`${USERADM}/roles`), get(`${USERADM}/permission_sets`)]);
  const includes = Object.fromEntries((sets || []).map((s) => [s.name, s.includes || []]));
  const held = new Set(me.roles || []);
  const grants = []; // [{name, scope|null}]
  for (const role of roles || []) {
    if (!held.has(role.name)) continue;
    for (const ps of role.permission_sets_with_scope || []) grants.push({ name: ps.name, scope: ps.scope || null });
  }
  const covers = (grant, name) => grant.name === "SuperUser" || grant.name === name || (includes[grant.name] || []).includes(name);
  return {
    roles: roles || [],
    sets: sets || [],
    // any grant of `name` (perhaps limited to groups or tags)
    can: (name) => grants.some((g) => covers(g, name)),
    // a grant of `name` over everything
    canAll: (name) => grants.some((g) => covers(g, name) && !g.scope),
    isAdmin: held.has("RBAC_ROLE_PERMIT_ALL"),
  };
}

// A button the user may not use: disabled, with the reason as its tooltip and visible text.
export function denyReason(perms, name) {
  return perms.can(name) ? null : `Your roles lack the permission set ${name}.`;
}
