// Create a deployment: release → target (devices, group, filter) → phases, retries, max devices → review.

import { enc, get, postPage, request } from "../api.js";
import { field, fmtValue, h, kvTable, navigate, replace, section, toast } from "../dom.js";
import { DEPLOYMENTS_V1, DEPLOYMENTS_V2 } from "../deploy.js";
import { INVENTORY_V2, deviceLabel, filterAttributes, filterBuilder, groups } from "../inventory.js";

const STEPS = ["Release", "Target", "Rollout", "Review"];

function radio(name, value, label, checked, onchange) {
  return h("label", { class: "radio" }, h("input", { type: "radio", name, value, checked, onchange }), " ", label);
}

export async function render(ctx, _params, query) {
  const [releases, groupNames, attributes, accepted] = await Promise.all([
    get(`${DEPLOYMENTS_V2}/deployments/releases`, { per_page: 500, sort: "modified:desc" }),
    groups(),
    filterAttributes(),
    postPage(`${INVENTORY_V2}/filters/search`, { page: 1, per_page: 100, filters: [{ scope: "identity", attribute: "status", type: "$eq", value: "accepted" }] }),
  ]);
  if (!ctx.alive) return;
  const state = {
    step: 0, release: query.get("release") || (releases[0] && releases[0].name) || "", name: "",
    target: query.get("group") ? "group" : query.get("device") ? "devices" : "all",
    group: query.get("group") || groupNames[0] || "", devices: new Set(query.getAll("device")), filter: [],
    phased: false, phases: [{ batch: 10, delay: 0 }, { batch: null, delay: 60 }], retries: 0, maxDevices: "", force: false,
  };
  const body = h("div", { class: "wizard-body" });
  const stepper = h("ol", { class: "stepper" });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const back = h("button", { type: "button", class: "btn", id: "wizard-back", onclick: () => move(-1) }, "Back");
  const next = h("button", { type: "button", class: "btn btn-primary", id: "wizard-next", onclick: () => move(1) }, "Next");
  let filterBox = null;

  const validate = () => {
    if (state.step === 0 && !state.release) return "Choose a release.";
    if (state.step === 1) {
      if (state.target === "group" && !state.group) return "Choose a group.";
      if (state.target === "devices" && !state.devices.size) return "Select at least one device.";
      if (state.target === "filter") {
        state.filter = filterBox.collect();
        if (!state.filter.length) return "Add at least one filter.";
      }
    }
    if (state.step === 2 && state.phased) {
      for (const [i, p] of state.phases.entries()) {
        if (i < state.phases.length - 1 && !(p.batch >= 1 && p.batch <= 100)) return `Phase ${i + 1}: batch size must be 1–100 %.`;
        if (i > 0 && !(p.delay > 0)) return `Phase ${i + 1}: the start delay must be positive.`;
      }
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
    if (state.target === "filter") {
      p.filter = state.filter;
      if (state.maxDevices !== "") p.max_devices = Number(state.maxDevices);
    }
    return p;
  };
  const create = async () => {
    const p = payload();
    next.disabled = true;
    try {
      let res;
      if (state.target === "group") {
        res = await request("POST", `${DEPLOYMENTS_V1}/deployments/group/${enc(state.group)}`, { json: p });
      } else {
        res = await request("POST", `${DEPLOYMENTS_V1}/deployments`, { json: p });
      }
      const location = res.headers.get("Location") || "";
      const id = location.split("/").pop();
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
  const targetStep = () => {
    const pick = (t) => () => { state.target = t; draw(); };
    const parts = [h("div", { class: "radios" },
      radio("target", "all", "All accepted devices", state.target === "all", pick("all")),
      radio("target", "group", "A group", state.target === "group", pick("group")),
      radio("target", "devices", "Selected devices", state.target === "devices", pick("devices")),
      radio("target", "filter", "Devices matching a filter (dynamic)", state.target === "filter", pick("filter")))];
    if (state.target === "group") {
      parts.push(groupNames.length ? field("Group", h("select", { id: "deploy-group", onchange: (e) => { state.group = e.target.value; } },
        groupNames.map((g) => h("option", { value: g, selected: g === state.group }, g)))) : h("p", { class: "muted" }, "No groups yet: set groups on the Devices page."));
    }
    if (state.target === "devices") {
      parts.push(h("div", { class: "device-picker" }, accepted.items.length ? accepted.items.map((d) => h("label", { class: "check" },
        h("input", { type: "checkbox", value: d.id, checked: state.devices.has(d.id), onchange: (e) => {
          if (e.target.checked) state.devices.add(d.id); else state.devices.delete(d.id);
        } }), " ", deviceLabel(d), h("span", { class: "muted mono small" }, ` ${d.id}`))) : h("p", { class: "muted" }, "No accepted devices.")));
    }
    if (state.target === "filter") {
      filterBox = filterBuilder(state.filter.length ? state.filter : [{ scope: "inventory", attribute: "device_type", type: "$eq", value: "" }], attributes, null);
      parts.push(filterBox, h("p", { class: "muted small" }, "Devices that match later join the deployment too."));
    }
    return h("div", {}, parts);
  };
  const rolloutStep = () => {
    const phaseRows = h("div", { class: "phases" }, state.phases.map((ph, i) => h("div", { class: "phase-row" },
      h("span", { class: "phase-name" }, `Phase ${i + 1}`),
      i < state.phases.length - 1 ? field("Batch %", h("input", { class: "phase-batch", type: "number", min: "1", max: "100", value: String(ph.batch), oninput: (e) => { ph.batch = Number(e.target.value); } }))
        : h("span", { class: "muted" }, "the remaining devices"),
      i > 0 ? field("Starts after (minutes)", h("input", { class: "phase-delay", type: "number", min: "1", value: String(ph.delay), oninput: (e) => { ph.delay = Number(e.target.value); } })) : h("span", { class: "muted" }, "starts at once"),
      i > 0 && state.phases.length > 2 ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => { state.phases.splice(i, 1); draw(); } }, "✕") : null)));
    return h("div", {},
      h("label", { class: "check" }, h("input", { type: "checkbox", id: "deploy-phased", checked: state.phased, onchange: (e) => { state.phased = e.target.checked; draw(); } }), " Roll out in phases"),
      state.phased ? h("div", {}, phaseRows, h("button", { type: "button", class: "btn btn-small", onclick: () => {
        state.phases.splice(state.phases.length - 1, 0, { batch: 10, delay: 30 * state.phases.length }); draw();
      } }, "+ Add phase")) : null,
      h("div", { class: "inline-form" },
        field("Retries per device", h("input", { type: "number", id: "deploy-retries", min: "0", max: "100", value: String(state.retries), oninput: (e) => { state.retries = Number(e.target.value) || 0; } })),
        state.target === "filter" ? field("Max devices", h("input", { type: "number", id: "deploy-max", min: "0", placeholder: "no limit", value: state.maxDevices, oninput: (e) => { state.maxDevices = e.target.value; } })) : null),
      h("label", { class: "check" }, h("input", { type: "checkbox", checked: state.force, onchange: (e) => { state.force = e.target.checked; } }), " Force installation (skip the already-installed check)"));
  };
  const reviewStep = () => {
    const p = payload();
    const target = { all: "all accepted devices", group: `group ${state.group}`, devices: `${state.devices.size} selected device(s)`,
      filter: state.filter.map((f) => `${f.scope}.${f.attribute} ${f.type} ${fmtValue(f.value)}`).join(" and ") }[state.target];
    return kvTable([["Name", p.name], ["Release", p.artifact_name], ["Target", target],
      ["Phases", p.phases ? p.phases.map((ph, i) => `${i + 1}: ${ph.batch_size ? `${ph.batch_size}%` : "rest"}${ph.start_ts ? ` at ${new Date(ph.start_ts).toLocaleString()}` : " now"}`).join("; ") : "all at once"],
      ["Retries", String(p.retries || 0)], ["Max devices", p.max_devices !== undefined ? String(p.max_devices) : "—"],
      ["Force installation", p.force_installation ? "yes" : "no"]]);
  };
  const draw = () => {
    replace(stepper, STEPS.map((s, i) => h("li", { class: i === state.step ? "current" : i < state.step ? "done" : undefined }, s)));
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
