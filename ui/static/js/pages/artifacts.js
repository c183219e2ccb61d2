// Releases and artifacts: upload with progress, the release list.

import { enc, getPage, upload } from "../api.js";
import { field, fmtDate, fmtSize, h, link, navigate, pager, replace, section, table, toast } from "../dom.js";
import { DEPLOYMENTS_V1, DEPLOYMENTS_V2 } from "../deploy.js";

const PER_PAGE = 20;

export function uploadForm(onDone) {
  const file = h("input", { type: "file", id: "artifact-file", accept: ".mender" });
  const description = h("input", { id: "artifact-description", placeholder: "optional", maxlength: "1024" });
  const bar = h("progress", { id: "upload-progress", max: "100", value: "0" });
  const status = h("span", { class: "upload-status", id: "upload-status" });
  const box = h("div", { class: "upload-progress", hidden: true }, bar, status);
  const button = h("button", { type: "submit", class: "btn btn-primary", id: "upload-button" }, "Upload");
  const form = h("form", { class: "upload-form", onsubmit: async (e) => {
    e.preventDefault();
    if (!file.files.length) { toast("Choose a .mender file first", "error"); return; }
    const chosen = file.files[0];
    const data = new FormData();
    data.append("size", String(chosen.size));  // the order matters: the artifact must come last
    if (description.value.trim()) data.append("description", description.value.trim());
    data.append("artifact", chosen, chosen.name);
    button.disabled = true;
    box.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading…";
    try {
      await upload(`${DEPLOYMENTS_V1}/artifacts`, data, (loaded, total) => {
        bar.value = Math.round((100 * loaded) / total);
        status.textContent = `${fmtSize(loaded)} of ${fmtSize(total)}`;
      });
      bar.value = 100;
      status.textContent = "Uploaded";
      toast(`Uploaded ${chosen.name}`, "success");
      form.reset();
      onDone();
    } catch (err) {
      status.textContent = `Failed: ${err.message}`;
      toast(`Upload failed: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  } }, h("div", { class: "inline-form" }, field("Artifact file (.mender)", file), field("Description", description), button), box);
  return form;
}

function deviceTypes(release) {
  const types = new Set();
  for (const a of release.artifacts || []) (a.device_types_compatible || []).forEach((t) => types.add(t));
  return [...types].join(", ") || "—";
}

export async function render(ctx, _params, query) {
  const page = Math.max(1, Number(query.get("page")) || 1);
  const name = query.get("name") || "";
  const sort = query.get("sort") || "modified:desc";
  const go = (changes) => navigate("artifacts", { page, name, sort, ...changes });
  const [sortKey, sortOrder] = sort.split(":");
  const onSort = (key) => go({ sort: `${key}:${sortKey === key && sortOrder === "asc" ? "desc" : "asc"}`, page: 1 });
  const listBox = h("div", { id: "release-list" });
  // Only the list reloads after an upload, so the upload's outcome stays on screen.
  const loadList = async () => {
    const { items, total } = await getPage(`${DEPLOYMENTS_V2}/deployments/releases`, { page, per_page: PER_PAGE, name: name || undefined, sort });
    if (!ctx.alive) return;
    replace(listBox,
      table([
        { title: "Release", sortKey: "name", render: (r) => link(`#/releases/${enc(r.name)}`, r.name, { class: "release-link" }) },
        { title: "Artifacts", sortKey: "artifacts_count", render: (r) => String(r.artifacts_count ?? (r.artifacts || []).length) },
        { title: "Device types", render: deviceTypes },
        { title: "Size", render: (r) => fmtSize((r.artifacts || []).reduce((n, a) => n + (a.size || 0), 0)) },
        { title: "Tags", sortKey: "tags", render: (r) => h("span", {}, (r.tags || []).map((t) => h("span", { class: "tag" }, t))) },
        { title: "Modified", sortKey: "modified", render: (r) => fmtDate(r.modified) },
      ], items, { sort: { key: sortKey, order: sortOrder }, onSort,
        emptyTitle: name ? "No release matches" : "No releases yet",
        emptyHint: name ? "" : "Upload a .mender artifact built with mender-artifact to create a release." }),
      total && total > PER_PAGE ? pager({ page, perPage: PER_PAGE, total, onChange: (p) => go({ page: p }) }) : null);
  };
  await loadList();
  if (!ctx.alive) return;
  const search = h("input", { type: "search", id: "release-search", placeholder: "Filter by name", value: name });
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Releases and artifacts")),
    section("Upload an artifact", uploadForm(() => loadList().catch((err) => toast(err.message, "error")))),
    section("Releases",
      h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); go({ name: search.value.trim(), page: 1 }); } },
        search, h("button", { type: "submit", class: "btn btn-small" }, "Filter")),
      listBox));
}
