"""A simulated device speaking mender-connect's side of the protocol over a real websocket (a
thread): session handshake, a shell that runs nothing but echoes, file transfer with mender-
connect's windows and acknowledgements, Mender client commands recorded. For the tests where the
real mender-connect would only add time (file transfer limits, the browser terminal); the
end-to-end tests run the real one."""

from __future__ import annotations

import threading

from websockets.exceptions import ConnectionClosed

from deviceconnect import protocol as p
from tests.deviceconnect.live import device_socket

CHUNK = 4096
SEND_WINDOW = 20 * CHUNK


class SimDevice:
    def __init__(self, base_url: str, token: str, files: dict[str, bytes] | None = None):
        self.files = dict(files or {})
        self.commands: list[str] = []
        self.shell_input: list[bytes] = []
        self.received: list[tuple[int, str]] = []  # (proto, type) of every message, in order
        self._line = bytearray()
        self._ws = device_socket(base_url, token)
        self._ws.__enter__()
        self.closed_code: int | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._ws.__exit__(None, None, None)
        self._thread.join(10)

    def _send(self, msg: p.ProtoMsg) -> None:
        self._ws.send(p.encode(msg))

    def _recv(self) -> p.ProtoMsg:
        return p.decode(self._ws.recv())

    def _serve(self) -> None:
        try:
            while True:
                self._handle(self._recv())
        except ConnectionClosed as exc:
            self.closed_code = exc.rcvd.code if exc.rcvd else None
        except Exception:  # the test sees the socket close
            pass

    def _handle(self, msg: p.ProtoMsg) -> None:
        self.received.append((msg.proto, msg.typ))
        sid = msg.sid
        if msg.proto == p.PROTO_CONTROL:
            if msg.typ == p.OPEN:
                self._send(p.ProtoMsg(p.PROTO_CONTROL, p.ACCEPT, sid, {},
                                      p.pack_body({"version": 1, "protocols": [p.UInt16(1), p.UInt16(2), p.UInt16(3),
                                                                               p.UInt16(4)]})))
            elif msg.typ == p.PING:
                self._send(p.ProtoMsg(p.PROTO_CONTROL, p.PONG, sid))
        elif msg.proto == p.PROTO_SHELL:
            status = {"status": p.Int64(p.SHELL_NORMAL)}
            if msg.typ == p.SHELL_NEW:
                self._send(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_NEW, sid, status, b"Shell started"))
                self._send(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, status, b"sim$ "))
            elif msg.typ == p.SHELL_DATA:  # a line discipline: echo keystrokes, answer each line
                self.shell_input.append(msg.body)
                out = bytearray()
                for byte in msg.body:
                    if byte in (10, 13):
                        out += b"\r\nsimulated: " + bytes(self._line) + b"\r\nsim$ "
                        self._line.clear()
                    else:
                        self._line.append(byte)
                        out.append(byte)
                self._send(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_DATA, sid, status, bytes(out)))
            elif msg.typ == p.SHELL_STOP:
                self._send(p.ProtoMsg(p.PROTO_SHELL, p.SHELL_STOP, sid, status))
        elif msg.proto == p.PROTO_MENDERCLIENT:
            self.commands.append(msg.typ)
            self._send(p.ProtoMsg(p.PROTO_MENDERCLIENT, msg.typ, sid, {"status": p.Int64(1)}))
        elif msg.proto == p.PROTO_FILETRANSFER:
            body = p.unpack_body(msg.body) if msg.body else {}
            if msg.typ == p.FT_STAT:
                self._stat(sid, body["path"])
            elif msg.typ == p.FT_GET:
                self._download(sid, body["path"])
            elif msg.typ == p.FT_PUT:
                self._upload(sid, body)

    def _error(self, sid: str, message: str, typ: str) -> None:
        self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.ERROR, sid, {}, p.pack_body({"err": message, "msgtype": typ})))

    def _stat(self, sid: str, path: str) -> None:
        if path not in self.files:
            self._error(sid, f"failed to get file info from path '{path}': no such file", p.FT_STAT)
            return
        info = {"path": path, "size": p.Int64(len(self.files[path])), "uid": 0, "gid": 0, "mode": 0o644}
        self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_FILE_INFO, sid, {}, p.pack_body(info)))

    def _download(self, sid: str, path: str) -> None:
        data = self.files[path]
        offset = acked = 0
        while offset < len(data):
            while offset < len(data) and offset - acked < SEND_WINDOW:
                piece = data[offset:offset + CHUNK]
                self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_CHUNK, sid, {"offset": p.Int64(offset)}, piece))
                offset += len(piece)
            if offset < len(data):
                acked = self._recv().props["offset"]
        self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_CHUNK, sid, {"offset": p.Int64(offset)}))
        while acked < offset:
            msg = self._recv()
            if msg.typ == p.FT_ACK:
                acked = msg.props["offset"]

    def _upload(self, sid: str, request: dict) -> None:
        path = request["path"]
        if path.startswith("/forbidden"):
            self._error(sid, "access denied", p.FT_PUT)
            return
        self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_ACK, sid, {"offset": p.Int64(0)}))
        received = bytearray()
        count = 0
        while True:
            msg = self._recv()
            if msg.typ != p.FT_CHUNK:
                return  # an error from the server: the upload is abandoned
            assert msg.props["offset"] == len(received)
            count += 1
            if not msg.body:
                # stored before the last ack: the server answers the upload on it, and a test
                # reading `files` right after must find the file
                self.files[path] = bytes(received)
                self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_ACK, sid, {"offset": p.Int64(len(received))}))
                return
            received += msg.body
            if count % 10 == 0:
                self._send(p.ProtoMsg(p.PROTO_FILETRANSFER, p.FT_ACK, sid, {"offset": msg.props["offset"]}))
