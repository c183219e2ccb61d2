// One release: notes, tags, its artifacts with their details, download and delete.

import { ApiError, del, enc, get, patch, put } from "../api.js";
import {
  confirmAction, field, fmtDate, fmtSize, h, kvTable, link, navigate, replace, section, toast,
} from "../dom.js";
import { DEPLOYMENTS_V1, DEPLOYMENTS_V2 } from "../deploy.js";

function list(values) {
  return values && values.length ? values.join(", ") : "—";
}

function artifactCard(a, refresh) {
  const updates = (a.updates || []).map((u) => (u.type_info && u.type_info.type) || "unknown");
  const files = (a.updates || []).flatMap((u) => u.files || []);
  const download = async () => {
    try {
      const linkInfo = await get(`${DEPLOYMENTS_V1}/artifacts/${enc(a.id)}/download`);
      window.location.assign(linkInfo.uri);
    } catch (err) { toast(`Download: ${err.message}`, "error"); }
  };
  const remove = async () => {
    if (!(await confirmAction("Delete artifact", `Delete ${a.name} for ${list(a.device_types_compatible)}? This cannot be undone.`, "Delete"))) return;
    try {
      await del(`${DEPLOYMENTS_V1}/artifacts/${enc(a.id)}`);
      toast("Artifact deleted", "success");
      refresh();
    } catch (err) {
      toast(err instanceof ApiError && err.status === 409 ? "An active deployment still uses this artifact." : err.message, "error");
    }
  };
  return h("div", { class: "artifact", "data-artifact-id": a.id },
    h("div", { class: "artifact-head" },
      h("div", {}, h("strong", {}, a.name), " ", h("span", { class: `badge ${a.signed ? "badge-signed" : "badge-unsigned"}` }, a.signed ? "signed" : "unsigned"),
        a.description ? h("div", { class: "muted" }, a.description) : null),
      h("div", { class: "row-actions" },
        h("button", { type: "button", class: "btn btn-small", onclick: download }, "Download"),
        h("button", { type: "button", class: "btn btn-small btn-danger", onclick: remove }, "Delete"))),
    kvTable([
      ["Device types", list(a.device_types_compatible)],
      ["Update types", list(updates)],
      ["Size", fmtSize(a.size)],
      ["Format", a.info ? `${a.info.format || "mender"} v${a.info.version ?? "?"}` : "—"],
      ["Provides", h("span", {}, Object.entries(a.artifact_provides || {}).map(([k, v]) => h("div", { class: "mono small" }, `${k} = ${v}`)))],
      ["Depends", h("span", {}, Object.entries(a.artifact_depends || {}).map(([k, v]) => h("div", { class: "mono small" }, `${k} = ${list(v)}`)))],
      ["Clears provides", list(a.clears_artifact_provides)],
      ["Files", h("span", {}, files.map((f) => h("div", { class: "mono small" }, `${f.name} (${fmtSize(f.size)})`)))],
      ["Modified", fmtDate(a.modified)],
      ["ID", h("span", { class: "mono small" }, a.id)],
    ]));
}

export async function render(ctx, [name]) {
  let release;
  try {
    release = await get(`${DEPLOYMENTS_V2}/deployments/releases/${enc(name)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(ctx.main, h("h1", {}, "Release not found"), h("p", {}, link("#/artifacts", "Back to releases")));
      return;
    }
    throw err;
  }
  if (!ctx.alive) return;
  const notes = h("textarea", { id: "release-notes", rows: "4", maxlength: "1024" });
  notes.value = release.notes || "";
  const tags = h("input", { id: "release-tags", placeholder: "comma-separated, e.g. stable, beta", value: (release.tags || []).join(", ") });
  const saveNotes = async () => {
    try { await patch(`${DEPLOYMENTS_V2}/deployments/releases/${enc(name)}`, { notes: notes.value }); toast("Notes saved", "success"); } catch (err) { toast(err.message, "error"); }
  };
  const saveTags = async () => {
    const list = tags.value.split(",").map((t) => t.trim()).filter(Boolean);
    try { await put(`${DEPLOYMENTS_V2}/deployments/releases/${enc(name)}/tags`, list); toast("Tags saved", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  const artifacts = release.artifacts || [];
  replace(ctx.main,
    h("div", { class: "breadcrumbs" }, link("#/artifacts", "Releases"), " / ", name),
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, name), h("div", { class: "muted" }, `${artifacts.length} artifact${artifacts.length === 1 ? "" : "s"} · modified ${fmtDate(release.modified)}`)),
      h("div", { class: "head-actions" },
        h("button", { type: "button", class: "btn btn-primary", onclick: () => navigate("deployments/new", { release: name }) }, "Deploy this release"))),
    h("div", { class: "grid-2" },
      section("Release notes", notes, h("div", { class: "form-actions" }, h("button", { type: "button", class: "btn btn-primary", id: "save-notes", onclick: saveNotes }, "Save notes"))),
      section("Tags", field("Tags", tags, "Letters, digits, '.', '_' and '-'; at most 20."),
        h("div", { class: "form-actions" }, h("button", { type: "button", class: "btn btn-primary", id: "save-release-tags", onclick: saveTags }, "Save tags")))),
    section("Artifacts", artifacts.length ? artifacts.map((a) => artifactCard(a, ctx.refresh)) : h("p", { class: "muted" }, "No artifacts left in this release.")));
}
