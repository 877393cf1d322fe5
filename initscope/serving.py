"""`initscope serve`: the app in a browser, one app process per visitor, bounded.

textual-serve starts an app process for every websocket and stops it when the
socket closes. Exposed to a network, that needs limits it does not set itself:

- at most `max_sessions` sessions at once; more visitors get a page (or a closed
  socket) that says so;
- every session's app gets a memory budget (`session_budget_gib`) so that all of
  them together fit the machine;
- a session's process is killed however its socket ends (a client gone mid-frame
  used to leave a stuck app process behind), after a short wait for it to quit;
- the terminal size a client asks for is capped (a 4000 x 2000 "terminal" made
  8 MB frames);
- the app knows it is served (INITSCOPE_SERVED=1) and does not write files,
  which would land on the server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket

from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

from initscope.sim.memory import DEFAULT_CAP, GIB, available_bytes

MAX_COLUMNS, MAX_ROWS = 320, 120  # the largest terminal a client may ask for
STOP_SECONDS = 3.0  # how long a session's app gets to quit before it is killed
SERVED_ENV = "INITSCOPE_SERVED"
log = logging.getLogger("textual-serve")


def session_budget_gib(max_sessions: int) -> float:
    """Each session's memory budget: the app's usual default (2 GiB, or half the
    free memory), shared out among the sessions, at least 0.25 GiB."""
    avail = available_bytes()
    total = DEFAULT_CAP if avail is None else min(DEFAULT_CAP * max_sessions, avail // 2)
    return max(0.25, round(total / max_sessions / GIB, 2))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> None:
    """Raise OSError with a one-line reason if `host:port` cannot be listened on."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(address)


def _size(value: object, default: int, largest: int) -> int:
    try:
        return max(10, min(largest, int(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


class SessionServer(Server):
    """textual-serve's Server with a session cap, size caps and sure clean-up."""

    def __init__(self, command: str, host: str, port: int, max_sessions: int) -> None:
        super().__init__(command, host=host, port=port, title="initscope")
        self.max_sessions = max_sessions
        self.sessions = 0

    async def handle_index(self, request: web.Request):
        if self.sessions >= self.max_sessions:
            return web.Response(status=503, content_type="text/html", text=(
                "<html><body><h1>initscope</h1><p>All "
                f"{self.max_sessions} sessions of this server are in use. Try again when "
                "one has closed.</p></body></html>"))
        return await super().handle_index(request)

    async def _process_messages(self, websocket: web.WebSocketResponse,
                                app_service: AppService) -> None:
        """The browser's keys, sizes (capped) and pings, until the socket ends."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, data = message.json()
            except (ValueError, TypeError):
                continue  # not an envelope: ignore it
            if kind == "stdin" and isinstance(data, str):
                await app_service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                await app_service.set_terminal_size(
                    _size(data.get("width"), 80, MAX_COLUMNS),
                    _size(data.get("height"), 24, MAX_ROWS))
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await app_service.blur()
            elif kind == "focus":
                await app_service.focus()

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 16)
        await websocket.prepare(request)
        if self.sessions >= self.max_sessions:
            await websocket.close(code=1013, message=b"all sessions are in use")
            return websocket
        self.sessions += 1
        app_service = AppService(self.command, write_bytes=websocket.send_bytes,
                                 write_str=websocket.send_str, close=websocket.close,
                                 download_manager=self.download_manager, debug=False)
        try:
            await app_service.start(_size(request.query.get("width"), 80, MAX_COLUMNS),
                                    _size(request.query.get("height"), 24, MAX_ROWS))
            await self._process_messages(websocket, app_service)
        except asyncio.CancelledError:
            pass
        except Exception as error:  # noqa: BLE001 - one visitor's failure is logged, not fatal
            log.warning("session ended by %s: %s", type(error).__name__, error)
        finally:
            await self._end(app_service)
            self.sessions -= 1
            await websocket.close()
        return websocket

    async def _end(self, app_service: AppService) -> None:
        """Ask the session's app to quit; kill its process if it has not within
        STOP_SECONDS (a client gone mid-frame can leave it stuck writing)."""
        try:
            await asyncio.wait_for(asyncio.shield(app_service.stop()), STOP_SECONDS)
        except Exception:  # noqa: BLE001 - a timeout or a broken pipe: killed below either way
            pass
        process = app_service._process  # AppService keeps its process to itself; we need it
        if process is not None and process.returncode is None:
            process.kill()
            try:
                await asyncio.wait_for(process.wait(), STOP_SECONDS)
            except TimeoutError:
                log.warning("session process %s did not end", process.pid)


def serve(command: str, host: str, port: int, max_sessions: int) -> None:
    os.environ[SERVED_ENV] = "1"  # the sessions' apps inherit it
    SessionServer(f"exec {command}", host, port, max_sessions).serve()
