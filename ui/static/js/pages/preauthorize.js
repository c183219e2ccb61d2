// Preauthorization: one device (identity + public key) or a file of many.

import { ApiError, request } from "../api.js";
import { field, h, modal, replace, toast } from "../dom.js";
import { DEVAUTH, preauthorize } from "../inventory.js";

export function preauthorizeDialog(done) {
  const identity = h("textarea", { id: "preauth-identity", rows: "3", placeholder: '{"mac": "00:11:22:33:44:55"}' });
  const pubkey = h("textarea", { id: "preauth-pubkey", rows: "6", placeholder: "-----BEGIN PUBLIC KEY-----" });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("Preauthorize a device", h("div", {},
    field("Identity data (JSON object)", identity),
    field("Public key (PEM)", pubkey), error), [{
    label: "Preauthorize", onclick: async (close) => {
      error.hidden = true;
      let data;
      try {
        data = JSON.parse(identity.value);
        if (!data || typeof data !== "object" || Array.isArray(data)) throw new Error("must be a JSON object");
      } catch (err) {
        error.textContent = `Identity data: ${err.message}`;
        error.hidden = false;
        return;
      }
      try {
        await preauthorize(data, pubkey.value.trim());
        toast("Device preauthorized", "success");
        close();
        done();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    },
  }]);
}

// A CSV or JSON file, preauthorized in one request by devauth's bulk endpoint (see docs/devauth.md).
export function importDialog(done) {
  const file = h("input", { type: "file", id: "preauth-file", accept: ".csv,.json,text/csv,application/json" });
  const error = h("div", { class: "alert alert-error", hidden: true });
  const results = h("div", { class: "bulk-results" });
  modal("Import preauthorizations", h("div", {},
    h("p", {}, "A CSV file with a header row (identity columns such as mac or sn, and a pubkey column), "
      + "or a JSON array of {\"identity_data\": {…}, \"pubkey\": \"PEM\"} objects."),
    field("File", file), error, results), [{
    label: "Import", onclick: async (close) => {
      error.hidden = true;
      if (!file.files.length) { error.textContent = "Choose a file."; error.hidden = false; return; }
      const chosen = file.files[0];
      const isCsv = chosen.name.toLowerCase().endsWith(".csv") || chosen.type === "text/csv";
      let summary;
      try {
        ({ data: summary } = await request("POST", `${DEVAUTH}/preauthorizations`, {
          body: await chosen.text(), contentType: isCsv ? "text/csv" : "application/json" }));
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) return;
        error.textContent = `The file was not accepted: ${err.message}`;
        error.hidden = false;
        return;
      }
      const problems = (summary.results || []).filter((r) => r.status !== "created");
      if (summary.created) toast(`Preauthorized ${summary.created} device(s)`, "success");
      done();
      if (!problems.length) { close(); return; }
      replace(results, h("p", {}, `${summary.created || 0} created, ${summary.conflict || 0} already known, ${summary.invalid || 0} invalid:`),
        h("ul", { class: "problems" }, problems.map((r) => h("li", {}, `row ${r.row}: ${r.status}${r.reason ? ` (${r.reason})` : ""}`))));
    },
  }]);
}
