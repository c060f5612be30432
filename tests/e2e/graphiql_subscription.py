"""Browser check: GraphiQL at /graphql runs a live subscription, offline, end to end.

    uv run python tests/e2e/graphiql_subscription.py [--screenshot PATH] [--keep]

What it does:

1. starts ``mensajero serve`` in embedded mode (a scratch SQLite file, the in-process
   Redis, the in-process worker, sandbox providers) and creates an organization with
   credits, a tag and three tagged clients through the GraphQL API;
2. launches Debian's headless Chromium (``apt-get install chromium``) with
   ``--headless --no-sandbox --disable-gpu --disable-background-networking`` and a
   host resolver that resolves NOTHING but 127.0.0.1, so any request to the internet
   would fail; it drives the browser over the DevTools protocol (plain websockets,
   no extra package);
3. opens GraphiQL at /graphql, types the API key in the Headers pane and a
   ``messageStatusChanged`` subscription in the editor, and presses Run;
4. sends an SMS to the tag (``sendSmsByTags`` over HTTP) and watches, from the
   browser's own websocket, the events arrive: QUEUED -> SENDING -> SENT -> DELIVERED
   for every message of the batch, and the result pane showing them;
5. saves a screenshot, and fails if the page made any request to another origin,
   failed to load anything, or threw a script error.

Exit status 0 and "OK" on success.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    # Offline by construction: every host name but the loopback fails to resolve.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--window-size=1400,900",
]
SUBSCRIPTION = """subscription LiveStatus {
  messageStatusChanged {
    status
    previousStatus
    occurredAt
    message { recipient body }
  }
}"""
LIFECYCLE = ["QUEUED", "SENDING", "SENT", "DELIVERED"]


CLI = [sys.executable, "-m", "mensajero.cli"]


def bootstrap_organization(env: dict[str, str]) -> str:
    """An organization with credits and a key, through the CLI; returns the key."""
    created = subprocess.run(
        [
            *CLI,
            "bootstrap",
            "--org",
            "Clínica Andes",
            "--email",
            "ana@example.com",
            "--credits",
            "100",
            "--json",
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return json.loads(created.stdout)["apiKey"]


def start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT
    )


def start_browser(chromium: str, devtools_port: int, workdir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--remote-debugging-port={devtools_port}",
            f"--user-data-dir={workdir / 'chromium'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def save_png(path: Path, data: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(data))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def graphql(http: httpx.AsyncClient, key: str, query: str, **variables: Any) -> Any:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


async def prepare_organization(http: httpx.AsyncClient, key: str) -> str:
    tag = await graphql(
        http,
        key,
        "mutation($input: CreateTagInput!) { createTag(input: $input) "
        "{ ... on CreateTagPayload { tag { id } } } }",
        input={"name": "pacientes"},
    )
    tag_id = tag["createTag"]["tag"]["id"]
    for number, name in enumerate(["Ana", "Bruno", "Carla"], start=1):
        await graphql(
            http,
            key,
            "mutation($input: CreateClientInput!) { createClient(input: $input) { __typename } }",
            input={
                "name": name,
                "phone": f"300 555 000{number}",
                "country": "CO",
                "tagIds": [tag_id],
            },
        )
    return tag_id


class DevTools:
    """The smallest Chrome DevTools Protocol client: commands and collected events."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(BaseException):
            await self._reader

    async def _read(self) -> None:
        async for raw in self.connection:
            message = json.loads(raw)
            if "id" in message and message["id"] in self._pending:
                future = self._pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]))
                else:
                    future.set_result(message.get("result", {}))
            elif "method" in message:
                self.events.append(message)

    async def send(self, method: str, **params: Any) -> Any:
        command_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self.connection.send(
            json.dumps({"id": command_id, "method": method, "params": params})
        )
        return await asyncio.wait_for(future, 30)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    async def wait_for(self, expression: str, *, within: float = 30.0) -> Any:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = await self.evaluate(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"never true in the page: {expression}")

    def of(self, method: str) -> list[dict[str, Any]]:
        return [event["params"] for event in self.events if event["method"] == method]


async def save_diagnostics(tools: DevTools, screenshot: Path) -> None:
    """On failure: a screenshot and what the page said, to see why."""
    shot = await tools.send("Page.captureScreenshot", format="png")
    failure = screenshot.with_name(screenshot.stem + ".failure.png")
    save_png(failure, shot["data"])
    print(f"failure screenshot: {failure}", file=sys.stderr)
    for event in tools.events:
        if event["method"] in (
            "Runtime.consoleAPICalled",
            "Runtime.exceptionThrown",
            "Log.entryAdded",
            "Network.loadingFailed",
            "Network.webSocketCreated",
            "Network.webSocketFrameSent",
            "Network.webSocketFrameReceived",
            "Network.webSocketClosed",
        ):
            print(json.dumps(event)[:400], file=sys.stderr)


def replace_editor_containing(marker: str, text: str) -> str:
    """JS that replaces the text of the GraphiQL editor whose text contains ``marker``."""
    return (
        "(() => { for (const node of document.querySelectorAll('.CodeMirror')) {"
        f" const cm = node.CodeMirror; if (cm && cm.getValue().includes({json.dumps(marker)}))"
        f" {{ cm.setValue({json.dumps(text)}); return true; }} }} return false; }})()"
    )


def set_editor(selector: str, text: str) -> str:
    """JS that replaces a GraphiQL (CodeMirror 5) editor's text."""
    return (
        f"(() => {{ const cm = document.querySelector({json.dumps(selector)})?.CodeMirror;"
        f" if (!cm) return false; cm.setValue({json.dumps(text)}); return true; }})()"
    )


async def run(screenshot: Path, keep: bool) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is missing: apt-get install chromium")
    workdir = Path(tempfile.mkdtemp(prefix="mensajero-graphiql-"))
    api_port, devtools_port = free_port(), free_port()
    env = {
        **os.environ,
        "MENSAJERO_DATABASE_URL": f"sqlite+aiosqlite:///{workdir / 'mensajero.db'}",
        "MENSAJERO_REDIS_URL": "memory://",
        "MENSAJERO_SANDBOX_DELAY_SECONDS": "1.0",
    }
    key = bootstrap_organization(env)
    server = start_server(env, api_port)
    browser: subprocess.Popen[bytes] | None = None
    base_url = f"http://127.0.0.1:{api_port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            for _ in range(300):
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            tag_id = await prepare_organization(http, key)

            browser = start_browser(chromium, devtools_port, workdir)
            page_ws = None
            for _ in range(300):
                try:
                    targets = (await http.get(f"http://127.0.0.1:{devtools_port}/json/list")).json()
                    page_ws = next(
                        t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"
                    )
                    break
                except (httpx.TransportError, StopIteration, ValueError):
                    await asyncio.sleep(0.1)
            assert page_ws, "Chromium's DevTools never answered"

            async with connect(page_ws, max_size=None) as connection:
                tools = DevTools(connection)
                for domain in ("Page", "Network", "Runtime", "Log"):
                    await tools.send(f"{domain}.enable")
                await tools.send("Page.navigate", url=f"{base_url}/graphql")
                await tools.wait_for("!!document.querySelector('.graphiql-execute-button')")
                await tools.wait_for(set_editor(".graphiql-query-editor .CodeMirror", SUBSCRIPTION))
                headers = json.dumps({"Authorization": f"Bearer {key}"})
                # The Headers pane (open by default) holds the placeholder key.
                await tools.wait_for(replace_editor_containing("mk_live_...", headers))
                # GraphiQL re-parses the editor (its documentAST, which decides websocket
                # or HTTP) a moment after a change: let it catch up before running.
                await asyncio.sleep(1.0)
                await tools.evaluate("document.querySelector('.graphiql-execute-button').click()")
                # The browser's websocket is up and acknowledged: then send.
                deadline = time.monotonic() + 20
                while not any(
                    json.loads(f["response"]["payloadData"]).get("type") == "connection_ack"
                    for f in tools.of("Network.webSocketFrameReceived")
                ):
                    if time.monotonic() > deadline:
                        await save_diagnostics(tools, screenshot)
                        raise AssertionError("GraphiQL never opened its websocket")
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.5)  # the subscribe message follows the ack
                sent = await graphql(
                    http,
                    key,
                    "mutation($input: SendSmsByTagsInput!) { sendSmsByTags(input: $input) "
                    "{ ... on MessageEnqueueResult { queueId messages { id recipient } } } }",
                    input={"message": "Recordatorio: su cita es mañana", "tagIds": [tag_id]},
                )
                recipients = {m["recipient"] for m in sent["sendSmsByTags"]["messages"]}
                assert len(recipients) == 3, sent

                def statuses_seen() -> dict[str, list[str]]:
                    seen: dict[str, list[str]] = {}
                    for frame in tools.of("Network.webSocketFrameReceived"):
                        message = json.loads(frame["response"]["payloadData"])
                        if message.get("type") != "next":
                            continue
                        change = message["payload"]["data"]["messageStatusChanged"]
                        seen.setdefault(change["message"]["recipient"], []).append(change["status"])
                    return seen

                deadline = time.monotonic() + 30
                while statuses_seen() != {r: LIFECYCLE for r in recipients}:
                    assert time.monotonic() < deadline, f"events missing: {statuses_seen()}"
                    await asyncio.sleep(0.1)
                # And the page shows them: the result pane holds the last event.
                await tools.wait_for(
                    "document.querySelector('.result-window .CodeMirror')"
                    "?.CodeMirror.getValue().includes('DELIVERED')"
                )
                shot = await tools.send("Page.captureScreenshot", format="png")
                save_png(screenshot, shot["data"])

                requested = [r["request"]["url"] for r in tools.of("Network.requestWillBeSent")]
                foreign = [
                    url
                    for url in requested
                    if not url.startswith(base_url) and not url.startswith("data:")
                ]
                failed = tools.of("Network.loadingFailed")
                errors = tools.of("Runtime.exceptionThrown")
                assert not foreign, f"requests to other origins: {foreign}"
                assert not failed, f"failed loads: {failed}"
                assert not errors, f"script errors: {errors}"
                sockets = [w["url"] for w in tools.of("Network.webSocketCreated")]
                print(
                    f"page requests: {len(requested)}, all from {base_url}; websockets: {sockets}"
                )
                for recipient, statuses in sorted(statuses_seen().items()):
                    print(f"{recipient}: {' -> '.join(statuses)}")
                print(f"screenshot: {screenshot}")
                print("OK")
                await tools.close()
    finally:
        if browser is not None:
            browser.terminate()
            browser.wait(timeout=10)
        server.terminate()
        server.wait(timeout=15)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--screenshot", type=Path, default=ROOT / "tests" / "e2e" / "graphiql_subscription.png"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    asyncio.run(run(args.screenshot, args.keep))


if __name__ == "__main__":
    main()
