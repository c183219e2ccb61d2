// The remote terminal (terminal.html, framed by the device page): xterm.js on the deviceconnect
// websocket, speaking Mender's ProtoMsg (msgpack). `#device=<id>` opens a shell on the device;
// `#session=<id>` plays a recorded session back. The websocket authenticates with the session
// cookie; the server checks that the handshake's Origin is this server (docs/deviceconnect.md).

import { Terminal } from "../vendor/xterm/xterm.mjs";
import { decode, encode } from "../vendor/msgpack/index.mjs";

const SHELL = 1;
const CONTROL = 0xffff;
const COLS = 100;
const ROWS = 30;
const MAX_PAUSE_MS = 2000; // a recorded pause longer than this plays as this

const params = new URLSearchParams(location.hash.slice(1));
const statusLine = document.getElementById("terminal-status");
const term = new Terminal({ cols: COLS, rows: ROWS, cursorBlink: true, fontSize: 14, scrollback: 5000,
  fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace" });
term.open(document.getElementById("terminal"));

function setStatus(text, state) {
  statusLine.textContent = text;
  statusLine.dataset.state = state;
}

function frame(proto, typ, props, body) {
  const hdr = { proto, typ };
  if (props) hdr.props = props;
  const message = { hdr };
  if (body && body.length) message.body = body;
  return encode(message);
}

function socketUrl(path) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
}

function closed(event, ending) {
  const reason = event.reason ? `: ${event.reason}` : "";
  setStatus(ending || `Disconnected (${event.code}${reason})`, event.code === 1000 ? "closed" : "error");
  term.options.cursorBlink = false;
}

function openShell(deviceId) {
  const ws = new WebSocket(socketUrl(`/api/management/v1/deviceconnect/devices/${encodeURIComponent(deviceId)}/connect`));
  ws.binaryType = "arraybuffer";
  let ending = "";
  const send = (proto, typ, props, body) => { if (ws.readyState === WebSocket.OPEN) ws.send(frame(proto, typ, props, body)); };
  ws.addEventListener("open", () => {
    setStatus("Starting a shell…", "connecting");
    send(SHELL, "new", { terminal_width: term.cols, terminal_height: term.rows });
    term.focus();
  });
  ws.addEventListener("message", (event) => {
    let msg;
    try { msg = decode(new Uint8Array(event.data)); } catch { return; }
    const { proto, typ, props = {} } = msg.hdr || {};
    const body = msg.body || new Uint8Array();
    if (proto === SHELL) {
      if (typ === "shell") term.write(body);
      else if (typ === "new") {
        if (Number(props.status) === 2) setStatus(`The device could not start a shell: ${new TextDecoder().decode(body)}`, "error");
        else setStatus("Connected", "open");
      } else if (typ === "stop") {
        ending = body.length ? `Session ended: ${new TextDecoder().decode(body)}` : "Session ended";
        ws.close(1000);
      } else if (typ === "ping") send(SHELL, "pong");
    } else if (proto === CONTROL && typ === "ping") send(CONTROL, "pong");
  });
  ws.addEventListener("close", (event) => closed(event, ending));
  const encoder = new TextEncoder();
  term.onData((data) => send(SHELL, "shell", null, encoder.encode(data)));
  term.onResize(({ cols, rows }) => send(SHELL, "resize", { terminal_width: cols, terminal_height: rows }));
}

function playBack(sessionId) {
  const ws = new WebSocket(socketUrl(`/api/management/v1/deviceconnect/sessions/${encodeURIComponent(sessionId)}/playback?sleep_ms=0`));
  ws.binaryType = "arraybuffer";
  let chain = Promise.resolve();
  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  ws.addEventListener("open", () => setStatus("Playing back the recorded session", "open"));
  ws.addEventListener("message", (event) => {
    let msg;
    try { msg = decode(new Uint8Array(event.data)); } catch { return; }
    const { typ, props = {} } = msg.hdr || {};
    chain = chain.then(async () => {
      if (typ === "shell") await new Promise((resolve) => term.write(msg.body || new Uint8Array(), resolve));
      else if (typ === "delay") await pause(Math.min(Number(props.delay_value) || 0, MAX_PAUSE_MS));
      else if (typ === "resize" && props.terminal_width > 0 && props.terminal_height > 0) {
        term.resize(Math.min(props.terminal_width, 500), Math.min(props.terminal_height, 200));
      }
    });
  });
  ws.addEventListener("close", (event) => chain.then(() => closed(event, event.code === 1000 ? "End of the recording" : "")));
}

if (params.get("device")) openShell(params.get("device"));
else if (params.get("session")) playBack(params.get("session"));
else setStatus("No device given", "error");
