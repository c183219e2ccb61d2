// Create a deployment: release → target (all devices, a group, a saved filter, picked devices, or an
// ad-hoc filter; each searched and paged, with the resulting device count) → rollout (phases with
// devices per phase, validated as typed; retries) → review.

import { enc, get, getPage, postPage, request } from "../api.js";
import { field, fmtValue, h, kvTable, navigate, pager, replace, section, toast } from "../dom.js";
import { DEPLOYMENTS_V1, DEPLOYMENTS_V2 } from "../deploy.js";
import { INVENTORY_V2, deviceLabel, filterAttributes, filterBuilder, groups } from "../inventory.js";
import { countOf, groupFilter } from "./fleet.js";
import { fmtCount } from "../selection.js";
import { idAttribute } from "./settings.js";

const STEPS = ["Release", "Target", "Rollout", "Review"];
const ACCEPTED = { scope: "identity", attribute: "status", type: "$eq", value: "accepted" };
const LIST_PAGE = 10;

function radio(name, value, label, checked, onchange) {
  return h("label", { class: "radio" }, h("input", { type: "radio", name, value, checked, onchange }), " ", label);
}

// Devices per phase as the server computes them: floor(batch% × n), the last phase takes the rest.
export function phaseSizes(phases, n) {
  let assigned = 0;
  return phases.map((p, i) => {
    if (i === phases.length - 1) return Math.max(0, n - assigned);
    const size = Math.floor((Number(p.batch) * n) / 100);
    assigned += size;
    return size;
  });
}

// The first problem with these phases, or null; `n` devices (null: not known yet).
export function phaseProblem(phases, n) {
  let total = 0;
  for (const [i, p] of phases.entries()) {
    const last = i === phases.length - 1;
    if (!last) {
      if (!Number.isInteger(p.batch) || p.batch < 1 || p.batch > 100) return `Phase ${i + 1}: the batch must be a whole percentage from 1 to 100.`;
      total += p.batch;
    }
    if (i > 0 && (!Number.isFinite(p.delay) || p.delay <= (i > 1 ? phases[i - 1].delay : 0))) {
      return `Phase ${i + 1}: start it later than phase ${i} (minutes after the start).`;
    }
  }
  if (total >= 100) return "The batches leave nothing for the last phase: keep their sum under 100 %.";
  if (n !== null) {
    const sizes = phaseSizes(phases, n);
    const zero = sizes.findIndex((s) => s < 1);
    if (zero >= 0) {
      return zero === phases.length - 1 ? `The last phase gets no device of ${fmtCount(n)}.`
        : `Phase ${zero + 1}: ${phases[zero].batch} % of ${fmtCount(n)} device${n === 1 ? "" : "s"} is no device; raise it to ${Math.ceil(100 / n)} % or more.`;
    }
  }
  return null;
}

// A first batch that gives at least one device on a small fleet (10 % on a large one).
export function defaultBatch(n) {
  if (!n) return 10;
  return Math.min(50, Math.max(10, Math.ceil(100 / n)));
}

// A searchable, paged list of items (radio or checkbox), each with an optional lazily loaded count.
function pickList({ id, load, render, placeholder }) {
  const box = h("div", { class: "pick-list", id });
  const search = h("input", { type: "search", placeholder, "aria-label": placeholder, class: "pick-search" });
  const list = h("div", { class: "pick-items" });
  const foot = h("div", {});
  let page = 1;
  const draw = async () => {
    const { items, total } = await load(search.value.trim(), page);
    replace(list, items.length ? items.map(render) : h("p", { class: "muted" }, "Nothing matches."));
    replace(foot, total > LIST_PAGE ? pager({ page, perPage: LIST_PAGE, total, onChange: (p) => { page = p; draw(); } }) : null);
  };
  let timer = null;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { page = 1; draw(); }, 250); });
  search.addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
  box.append(search, list, foot);
  draw();
  return box;
}

async function savedFilters() {
  try { return (await getPage(`${INVENTORY_V2}/filters`, { per_page: 500 })).items; } catch (err) { if (err.status === 401) throw err; return []; }
}

export async function render(ctx, _params, query) {
  const [releases, groupNames, attributes, filters, idAttr] = await Promise.all([
    get(`${DEPLOYMENTS_V2}/deployments/releases`, { per_page: 500, sort: "modified:desc" }),
    groups(), filterAttributes(), savedFilters(), idAttribute(),
  ]);
  if (!ctx.alive) return;
  const state = {
    step: 0, release: query.get("release") || (releases[0] && releases[0].name) || "", name: "",
    target: query.get("group") ? "group" : query.get("filter") ? "saved" : query.get("device") ? "devices" : "all",
    group: query.get("group") || "", filterId: query.get("filter") || "", devices: new Set(query.getAll("device")), filter: [],
    count: null, phased: false, phases: null, retries: 0, maxDevices: "", force: false,
  };
  const body = h("div", { class: "wizard-body" });
  const stepper = h("ol", { class: "stepper" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const back = h("button", { type: "button", class: "btn", id: "wizard-back", onclick: () => move(-1) }, "Back");
  const next = h("button", { type: "button", class: "btn btn-primary", id: "wizard-next", onclick: () => move(1) }, "Next");
  const countLine = h("div", { class: "target-count", id: "target-count", "aria-live": "polite" });
  let filterBox = null;
  let countSeq = 0;

  const dynamic = () => state.target === "saved" || state.target === "adhoc";
  const targetFilters = () => {
    if (state.target === "all") return [ACCEPTED];
    if (state.target === "group") return state.group ? [...groupFilter(state.group), ACCEPTED] : null;
    if (state.target === "saved") { const f = filters.find((x) => x.id === state.filterId); return f ? [...f.terms, ACCEPTED] : null; }
    if (state.target === "adhoc") return state.filter.length ? [...state.filter, ACCEPTED] : null;
    return null;
  };
  const recount = async () => {
    const seq = ++countSeq;
    if (state.target === "devices") { state.count = state.devices.size; showCount(); return; }
    const f = targetFilters();
    if (!f) { state.count = null; showCount(); return; }
    countLine.textContent = "Counting…";
    try { const n = await countOf(f); if (seq === countSeq) { state.count = n; showCount(); } } catch { if (seq === countSeq) { state.count = null; showCount(); } }
  };
  const showCount = () => {
    countLine.textContent = state.count === null ? "" : `${fmtCount(state.count)} device${state.count === 1 ? "" : "s"}${dynamic() ? " match now (devices that match later join too)" : " will get this deployment"}`;
  };

  const validate = () => {
    if (state.step === 0 && !state.release) return "Choose a release.";
    if (state.step === 1) {
      if (state.target === "group" && !state.group) return "Choose a group.";
      if (state.target === "saved" && !state.filterId) return "Choose a saved filter.";
      if (state.target === "devices" && !state.devices.size) return "Select at least one device.";
      if (state.target === "adhoc") {
        state.filter = filterBox.collect();
        if (!state.filter.length) return "Add at least one filter.";
      }
      if (!dynamic() && state.count === 0) return "No accepted device is targeted.";
    }
    if (state.step === 2) {
      if (state.phased) { const p = phaseProblem(state.phases, dynamic() ? null : state.count); if (p) return p; }
      if (!Number.isInteger(state.retries) || state.retries < 0 || state.retries > 100) return "Retries: a whole number from 0 to 100.";
    }
    return null;
  };
  const move = async (delta) => {
    error.hidden = true;
    if (delta > 0) {
      const problem = validate();
      if (problem) { error.textContent = problem; error.hidden = false; return; }
      if (state.step === STEPS.length - 1) { await create(); return; }
    }
    state.step = Math.max(0, Math.min(STEPS.length - 1, state.step + delta));
    draw();
  };
  const payload = () => {
    const p = { name: state.name || state.release, artifact_name: state.release };
    if (state.retries) p.retries = state.retries;
    if (state.force) p.force_installation = true;
    if (state.phased) {
      const now = Date.now();
      p.phases = state.phases.map((ph, i) => {
        const out = {};
        if (i < state.phases.length - 1) out.batch_size = Number(ph.batch);
        if (i > 0) out.start_ts = new Date(now + ph.delay * 60000).toISOString().replace(/\.\d+Z$/, "Z");
        return out;
      });
    }
    if (state.target === "all") p.all_devices = true;
    if (state.target === "devices") p.devices = [...state.devices];
    if (state.target === "saved") p.filter_id = state.filterId;
    if (state.target === "adhoc") p.filter = state.filter;
    if (dynamic() && state.maxDevices !== "") p.max_devices = Number(state.maxDevices);
    return p;
  };
  const create = async () => {
    const p = payload();
    next.disabled = true;
    try {
      let res;
      if (state.target === "group") res = await request("POST", `${DEPLOYMENTS_V1}/deployments/group/${enc(state.group)}`, { json: p });
      else if (dynamic()) res = await request("POST", `${DEPLOYMENTS_V2}/deployments`, { json: p });
      else res = await request("POST", `${DEPLOYMENTS_V1}/deployments`, { json: p });
      const id = (res.headers.get("Location") || "").split("/").pop();
      toast("Deployment created", "success");
      navigate(id ? `deployments/${id}` : "deployments");
    } catch (err) {
      error.textContent = `Could not create the deployment: ${err.message}`;
      error.hidden = false;
    } finally { next.disabled = false; }
  };

  const releaseStep = () => {
    if (!releases.length) return h("p", {}, "No releases yet: ", h("a", { href: "#/artifacts" }, "upload an artifact"), " first.");
    const select = h("select", { id: "deploy-release", onchange: () => { state.release = select.value; } },
      releases.map((r) => h("option", { value: r.name, selected: r.name === state.release },
        `${r.name} (${(r.artifacts || []).flatMap((a) => a.device_types_compatible || []).join(", ") || "no device types"})`)));
    const name = h("input", { id: "deploy-name", placeholder: "default: the release name", value: state.name, oninput: () => { state.name = name.value.trim(); } });
    return h("div", {}, field("Release", select), field("Deployment name", name));
  };
  const countBadge = (filtersOf) => {
    const span = h("span", { class: "count" }, "…");
    countOf(filtersOf).then((n) => { span.textContent = fmtCount(n); }, () => { span.textContent = "—"; });
    return span;
  };
  const targetStep = () => {
    const pick = (t) => () => { state.target = t; draw(); };
    const parts = [h("div", { class: "radios" },
      radio("target", "all", "All accepted devices", state.target === "all", pick("all")),
      radio("target", "group", "A group", state.target === "group", pick("group")),
      radio("target", "saved", "A saved filter (dynamic)", state.target === "saved", pick("saved")),
      radio("target", "devices", "Selected devices", state.target === "devices", pick("devices")),
      radio("target", "adhoc", "Devices matching a filter (dynamic)", state.target === "adhoc", pick("adhoc")))];
    if (state.target === "group") {
      parts.push(pickList({ id: "group-picker", placeholder: "Search groups", load: async (q, page) => {
        const all = groupNames.filter((g) => g.toLowerCase().includes(q.toLowerCase()));
        return { items: all.slice((page - 1) * LIST_PAGE, page * LIST_PAGE), total: all.length };
      }, render: (g) => h("label", { class: "radio pick-item" }, h("input", { type: "radio", name: "deploy-group", value: g, checked: g === state.group,
        onchange: () => { state.group = g; recount(); } }), " ", g, " ", countBadge([...groupFilter(g), ACCEPTED])) }));
    }
    if (state.target === "saved") {
      parts.push(pickList({ id: "filter-picker", placeholder: "Search saved filters", load: async (q, page) => {
        const all = filters.filter((f) => f.name.toLowerCase().includes(q.toLowerCase()));
        return { items: all.slice((page - 1) * LIST_PAGE, page * LIST_PAGE), total: all.length };
      }, render: (f) => h("label", { class: "radio pick-item" }, h("input", { type: "radio", name: "deploy-filter", value: f.id, checked: f.id === state.filterId,
        onchange: () => { state.filterId = f.id; recount(); } }), " ", f.name, " ", countBadge([...f.terms, ACCEPTED])) }));
    }
    if (state.target === "devices") {
      const picked = h("span", { class: "muted", id: "picked-count" }, `${fmtCount(state.devices.size)} selected`);
      parts.push(picked, pickList({ id: "device-picker", placeholder: "Search devices by name, MAC, serial, any attribute", load: async (q, page) => {
        const r = await postPage(`${INVENTORY_V2}/filters/search`, { page, per_page: LIST_PAGE, filters: [ACCEPTED], ...(q ? { text: q } : {}) });
        return { items: r.items, total: r.total };
      }, render: (d) => h("label", { class: "check pick-item" }, h("input", { type: "checkbox", value: d.id, checked: state.devices.has(d.id), onchange: (e) => {
        if (e.target.checked) state.devices.add(d.id); else state.devices.delete(d.id);
        picked.textContent = `${fmtCount(state.devices.size)} selected`;
        recount();
      } }), " ", h("span", { title: d.id }, deviceLabel(d, idAttr))) }));
    }
    if (state.target === "adhoc") {
      filterBox = filterBuilder(state.filter.length ? state.filter : [{ scope: "inventory", attribute: "device_type", type: "$eq", value: "" }], attributes,
        (f) => { state.filter = f; recount(); }, { applyLabel: "Count devices" });
      parts.push(filterBox);
    }
    parts.push(countLine);
    recount();
    return h("div", {}, parts);
  };
  const rolloutStep = () => {
    const n = dynamic() ? state.count : state.count;
    if (!state.phases) state.phases = [{ batch: defaultBatch(n), delay: 0 }, { batch: null, delay: 60 }];
    const problem = h("div", { class: "field-error", id: "phase-error", role: "alert" });
    const sizes = [];
    const refresh = () => {
      const p = state.phased ? phaseProblem(state.phases, n) : null;
      problem.textContent = p || "";
      next.disabled = Boolean(p);
      const counts = n === null ? [] : phaseSizes(state.phases, n);
      sizes.forEach((el, i) => { el.textContent = n === null ? "" : `→ ${fmtCount(counts[i])} device${counts[i] === 1 ? "" : "s"}${dynamic() && i === state.phases.length - 1 ? " now, and those that match later" : ""}`; });
    };
    const phaseRows = h("div", { class: "phases" }, state.phases.map((ph, i) => {
      const size = h("span", { class: "phase-size", "data-phase": String(i) });
      sizes.push(size);
      return h("div", { class: "phase-row" },
        h("span", { class: "phase-name" }, `Phase ${i + 1}`),
        i < state.phases.length - 1 ? field("Batch %", h("input", { class: "phase-batch", type: "number", min: "1", max: "99", value: String(ph.batch),
          oninput: (e) => { ph.batch = e.target.value === "" ? NaN : Number(e.target.value); refresh(); } }))
          : h("span", { class: "muted phase-rest" }, "the rest"),
        i > 0 ? field("Starts after (minutes)", h("input", { class: "phase-delay", type: "number", min: "1", value: String(ph.delay),
          oninput: (e) => { ph.delay = e.target.value === "" ? NaN : Number(e.target.value); refresh(); } })) : h("span", { class: "muted" }, "starts at once"),
        size,
        i > 0 && state.phases.length > 2 ? h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": `remove phase ${i + 1}`, onclick: () => { state.phases.splice(i, 1); draw(); } }, "✕") : null);
    }));
    const retries = h("input", { type: "number", id: "deploy-retries", min: "0", max: "100", value: String(state.retries) });
    const retriesError = h("div", { class: "field-error", role: "alert" });
    retries.addEventListener("input", () => {
      state.retries = retries.value === "" ? 0 : Number(retries.value);
      retriesError.textContent = Number.isInteger(state.retries) && state.retries >= 0 && state.retries <= 100 ? "" : "A whole number from 0 to 100.";
    });
    const out = h("div", {},
      n !== null ? h("p", { class: "muted" }, `${fmtCount(n)} device${n === 1 ? "" : "s"}${dynamic() ? " match now" : " targeted"}.`) : null,
      h("label", { class: "check" }, h("input", { type: "checkbox", id: "deploy-phased", checked: state.phased, onchange: (e) => { state.phased = e.target.checked; draw(); } }), " Roll out in phases"),
      state.phased ? h("div", {}, phaseRows, problem, h("button", { type: "button", class: "btn btn-small", id: "add-phase", onclick: () => {
        const last = state.phases[state.phases.length - 1];
        state.phases.splice(state.phases.length - 1, 0, { batch: defaultBatch(n), delay: last.delay });
        last.delay += 60;
        draw();
      } }, "+ Add phase")) : null,
      h("div", { class: "inline-form" },
        h("div", {}, field("Retries per device", retries), retriesError),
        dynamic() ? field("Max devices", h("input", { type: "number", id: "deploy-max", min: "0", placeholder: "no limit", value: state.maxDevices, oninput: (e) => { state.maxDevices = e.target.value; } })) : null),
      h("label", { class: "check" }, h("input", { type: "checkbox", checked: state.force, onchange: (e) => { state.force = e.target.checked; } }), " Force installation (skip the already-installed check)"));
    setTimeout(refresh);
    return out;
  };
  const reviewStep = () => {
    const p = payload();
    const saved = filters.find((f) => f.id === state.filterId);
    const target = { all: "all accepted devices", group: `group ${state.group}`, devices: `${fmtCount(state.devices.size)} selected device(s)`,
      saved: `filter ${saved ? saved.name : state.filterId}`,
      adhoc: state.filter.map((f) => `${f.scope}.${f.attribute} ${f.type} ${fmtValue(f.value)}`).join(" and ") }[state.target];
    const sizes = state.phased && state.count !== null ? phaseSizes(state.phases, state.count) : [];
    return kvTable([["Name", p.name], ["Release", p.artifact_name], ["Target", target],
      ["Devices", state.count === null ? "—" : fmtCount(state.count) + (dynamic() ? " now" : "")],
      ["Phases", p.phases ? p.phases.map((ph, i) => `${i + 1}: ${ph.batch_size ? `${ph.batch_size}%` : "the rest"}${sizes.length ? ` (${fmtCount(sizes[i])})` : ""}${ph.start_ts ? ` at ${new Date(ph.start_ts).toLocaleString()}` : " now"}`).join("; ") : "all at once"],
      ["Retries", String(p.retries || 0)], ["Max devices", p.max_devices !== undefined ? String(p.max_devices) : "—"],
      ["Force installation", p.force_installation ? "yes" : "no"]]);
  };
  const draw = () => {
    replace(stepper, STEPS.map((s, i) => h("li", { class: i === state.step ? "current" : i < state.step ? "done" : undefined }, s)));
    next.disabled = false;
    replace(body, [releaseStep, targetStep, rolloutStep, reviewStep][state.step]());
    back.disabled = state.step === 0;
    next.textContent = state.step === STEPS.length - 1 ? "Create deployment" : "Next";
  };
  replace(ctx.main,
    h("div", { class: "breadcrumbs" }, h("a", { href: "#/deployments" }, "Deployments"), " / new"),
    h("div", { class: "page-head" }, h("h1", {}, "Create a deployment")),
    section(null, stepper, body, error, h("div", { class: "form-actions wizard-actions" }, back, next)));
  draw();
}
