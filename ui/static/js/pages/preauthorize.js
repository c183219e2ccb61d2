// Preauthorization: one device (identity + public key) or a file of many.

import { ApiError, post } from "../api.js";
import { field, h, modal, toast } from "../dom.js";
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

// A file: a JSON array of {"identity_data": {...}, "pubkey": "..."}, or CSV lines `identity-json,pubkey`.
export function parsePreauthFile(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("[")) {
    const list = JSON.parse(trimmed);
    if (!Array.isArray(list)) throw new Error("expected a JSON array");
    return list;
  }
  throw new Error("expected a JSON array of {identity_data, pubkey}");
}

export function importDialog(done) {
  const file = h("input", { type: "file", id: "preauth-file", accept: ".json,application/json" });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("Import preauthorizations", h("div", {},
    h("p", {}, 'A JSON file: an array of objects with "identity_data" (an object) and "pubkey" (PEM).'),
    field("File", file), error), [{
    label: "Import", onclick: async (close) => {
      error.hidden = true;
      if (!file.files.length) { error.textContent = "Choose a file."; error.hidden = false; return; }
      let entries;
      try { entries = parsePreauthFile(await file.files[0].text()); } catch (err) {
        error.textContent = `The file is not valid: ${err.message}`;
        error.hidden = false;
        return;
      }
      let ok = 0;
      const failures = [];
      for (const [i, entry] of entries.entries()) {
        try { await post(`${DEVAUTH}/devices`, entry); ok += 1; } catch (err) {
          if (err instanceof ApiError && err.status === 401) return;
          failures.push(`#${i + 1}: ${err.message}`);
        }
      }
      if (ok) toast(`Preauthorized ${ok} device(s)`, "success");
      if (failures.length) { error.textContent = failures.join("; "); error.hidden = false; done(); return; }
      close();
      done();
    },
  }]);
}
