// The "set group" dialog used by the device list and the device page.

import { del, enc, get, put } from "../api.js";
import { field, h, modal, toast } from "../dom.js";
import { INVENTORY_V1, bulk, groups } from "../inventory.js";

export async function groupDialog(deviceIds, done) {
  const known = await groups();
  const input = h("input", { id: "group-name", list: "group-names", placeholder: "group name", maxlength: "1024" });
  const body = h("div", {}, h("datalist", { id: "group-names" }, known.map((g) => h("option", { value: g }))),
    field("Group", input, "Letters, digits, '-' and '_'. Leave empty to remove the devices from their group."));
  modal(`Group of ${deviceIds.length} device${deviceIds.length === 1 ? "" : "s"}`, body, [{
    label: "Save", onclick: async (close) => {
      const name = input.value.trim();
      const { ok, failed } = await bulk(deviceIds, async (id) => {
        if (name) return put(`${INVENTORY_V1}/devices/${enc(id)}/group`, { group: name });
        const current = await get(`${INVENTORY_V1}/devices/${enc(id)}/group`);
        if (current && current.group) await del(`${INVENTORY_V1}/devices/${enc(id)}/group/${enc(current.group)}`);
        return null;
      });
      for (const [id, msg] of failed) toast(`${id}: ${msg}`, "error");
      if (ok) toast(name ? `Moved ${ok} device(s) to ${name}` : `Removed ${ok} device(s) from their group`, "success");
      if (!failed.length) close();
      done();
    },
  }]);
}
