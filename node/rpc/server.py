"""JSON-RPC 2.0 over HTTP with aiohttp: who may call (Host, Origin, namespaces),
what a request may be (bytes, JSON shape, batch length) and what it may cost
(work budget, response bytes), with an error object (never a traceback) for
every bad input.

Every call runs in its own turn of the event loop, one call at a time, so the
block producer sharing that loop waits behind at most one call, however many
connections are open and however long their batches are."""
from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import re
import time
from dataclasses import dataclass

import orjson
from aiohttp import web

from node.rpc.budget import DEFAULT_BATCH_BUDGET, DEFAULT_CALL_BUDGET, budget_exceeded, request_context
from node.rpc.errors import (INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
                             RpcError)

log = logging.getLogger("gridnode.rpc")

MAX_REQUEST_BYTES = 5 * 1024 * 1024
"""go-ethereum's HTTP body limit (Besu: 5 MiB too)."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects in a request; the deepest real Ethereum request
(a batch of eth_getLogs with OR-ed topics) nests 6. Kept far below Python's recursion limit so
nothing that walks a parameter (repr in an error message, a comparison) can exhaust it; the
parser itself (orjson) stops at 1024. Besu's Jackson stops at 1000, geth's encoding/json at 10,000."""
MAX_JSON_CONTAINERS = 20_000
"""Arrays and objects in one request. Building Python objects is what parsing costs: 5 MiB
of `[],` is 1.6 M lists and holds the loop for 0.6 s, while a full batch of 1,000 log queries
needs under 10,000. Go parses the same bytes in milliseconds, so geth needs no such bound."""
MAX_BATCH_ITEMS = 1000
"""Calls in one batch: geth's `--rpc.batch-request-limit` default."""
MAX_BATCH_RESPONSE_BYTES = 25_000_000
"""Bytes of all answers of one batch: geth's `--rpc.batch-response-max-size` default. Calls past
it get a "response too large" error instead of a result (a 151 kB batch of full blocks once
produced 261 MB)."""
BATCH_PIECE_BYTES = 64 * 1024
"""A batch's answers go out in pieces of about this size (one write each, not one per answer)."""
MAX_RESPONSE_BYTES = 25_000_000
"""Bytes of the answer to one call, batched or not: no single answer may be larger than a
whole batch's. geth has no separate cap; its batch cap bounds a call inside a batch alike."""
RESPONSE_TOO_LARGE = -32003
"""geth's error code for an answer over its byte cap ("response too large")."""
DEFAULT_APIS = ("eth", "net", "web3", "grid", "txpool")
"""Namespaces served unless `--http-api` says otherwise, like geth's `--http.api` default
(eth,net,web3). admin_ steers peers, so it is served only when asked for."""
KNOWN_APIS = DEFAULT_APIS + ("admin", "harness")
"""harness_ (clock skew, byzantine modes) exists only on a node the fault harness started."""
DEFAULT_VHOSTS = ("localhost",)
"""Host names accepted in the `Host` header (geth's `--http.vhosts` default): a browser page
whose name was rebound to 127.0.0.1 still sends its own name, and is refused."""
ACCEPTED_CONTENT_TYPES = ("application/json", "application/json-rpc", "application/jsonrequest")
"""What geth accepts; a form or `text/plain` POST (which a browser sends cross-site without
asking) is refused with 415."""
CORS_MAX_AGE = 600
"""Seconds a browser may cache a preflight answer (geth's value)."""


@dataclass(frozen=True)
class RpcConfig:
    """How the endpoint is exposed and what one request may cost; one field per `gridnode start` flag."""
    vhosts: tuple[str, ...] = DEFAULT_VHOSTS
    """Host names allowed in the Host header ('*' for any); IP literals are always allowed, as in geth."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call ('*' for any); a request from any other Origin is refused."""
    apis: tuple[str, ...] = DEFAULT_APIS
    allow_remote_admin: bool = False
    """Serve admin_ even when the RPC listens beyond loopback."""
    batch_items: int = MAX_BATCH_ITEMS
    batch_response_bytes: int = MAX_BATCH_RESPONSE_BYTES
    response_bytes: int = MAX_RESPONSE_BYTES
    call_budget: float = DEFAULT_CALL_BUDGET
    batch_budget: float = DEFAULT_BATCH_BUDGET

    def check(self, listen_host: str) -> None:
        """Raise ValueError for a configuration the node must not start with."""
        unknown = sorted(set(self.apis) - set(KNOWN_APIS))
        if unknown:
            raise ValueError(f"unknown API namespace {', '.join(unknown)} (known: {', '.join(KNOWN_APIS)})")
        for name in ("batch_items", "batch_response_bytes", "response_bytes", "call_budget", "batch_budget"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', ' ')} must be positive")
        for steering in ("admin", "harness"):
            if steering in self.apis and not self.allow_remote_admin and not is_loopback(listen_host):
                raise ValueError(f"the {steering} API would be reachable on {listen_host}: listen on loopback, "
                                 "or pass --rpc-allow-remote-admin if that is really meant")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def collect_methods(*apis) -> dict:
    """Every public `<namespace>_<method>` of the API objects, by its RPC name."""
    prefixes = tuple(f"{namespace}_" for namespace in KNOWN_APIS)
    methods = {}
    for api in apis:
        for name in dir(api):
            if name.startswith(prefixes):
                methods[name] = getattr(api, name)
    return methods


class JsonRpcServer:
    def __init__(self, methods: dict, config: RpcConfig = RpcConfig()) -> None:
        self.config = config
        self.methods = {name: method for name, method in methods.items() if name.split("_", 1)[0] in config.apis}
        self.signatures = {name: inspect.signature(method) for name, method in self.methods.items()}
        self._vhosts = {name.lower() for name in config.vhosts}
        self._turn = asyncio.Lock()
        """Held by the one piece of RPC work running now; others wait first come, first served."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[self._exposure])
        app.on_response_prepare.append(self._allow_origin)
        app.router.add_post("/", self.handle_http)
        app.router.add_route("OPTIONS", "/", self.handle_preflight)
        return app

    # --- who may call -------------------------------------------------------------------------

    @web.middleware
    async def _exposure(self, request: web.Request, handler) -> web.StreamResponse:
        """Host and Origin checks for every request, before any body is read."""
        host = request.headers.get("Host", "")
        if not self._host_allowed(host):
            return _http_error(403, f"invalid host specified: {host!r} is not in --http-vhosts")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin):
            return _http_error(403, f"origin {origin!r} is not allowed: add it to --http-corsdomain")
        return await handler(request)

    async def _allow_origin(self, request: web.Request, response: web.StreamResponse) -> None:
        """Tell a browser it may read the answer: set on every response before its headers go out."""
        origin = request.headers.get("Origin")
        if origin is not None and self._origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"

    def _host_allowed(self, host: str) -> bool:
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
        try:
            ipaddress.ip_address(name)
            return True  # DNS rebinding needs a name; an address literal is what the client dialled
        except ValueError:
            pass
        return bool(name) and ("*" in self._vhosts or name.lower() in self._vhosts)

    def _origin_allowed(self, origin: str) -> bool:
        return "*" in self.config.cors_origins or origin in self.config.cors_origins

    async def handle_preflight(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(status=204)
        if "Origin" in request.headers:
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Max-Age"] = str(CORS_MAX_AGE)
        return response

    # --- what a request may be ----------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if request.content_type not in ACCEPTED_CONTENT_TYPES:
            return _http_error(415, "invalid content type, only application/json is supported")
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            return _http_error(413, f"request too large: {request.content_length} bytes, limit {MAX_REQUEST_BYTES}")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _http_error(413, f"request too large: limit {MAX_REQUEST_BYTES} bytes")
        client = request.remote or "unknown"
        try:
            payload = await self._take_turn(parse_request, body)
        except RpcError as exc:
            return _reply(_encode(_error(None, exc)))
        if isinstance(payload, list):
            return await self._run_batch(request, payload, client)
        answer, _seconds = await self._take_turn(self._answer, payload, client, self.config.call_budget)
        if answer is not None and len(answer) > self.config.response_bytes:
            answer = _refusal(payload, _too_large(f"{len(answer)} bytes, limit {self.config.response_bytes}"))
        return _reply(answer) if answer is not None else web.Response(status=204)

    # --- what a request may cost --------------------------------------------------------------

    async def _take_turn(self, work, *args):
        """Run one piece of synchronous RPC work in its own loop iteration, after whatever was
        already due (a block to produce, a peer's message): holding the lock while yielding makes
        every other request wait here instead of running in the same iteration."""
        async with self._turn:
            await asyncio.sleep(0)
            return work(*args)

    async def _run_batch(self, request: web.Request, batch: list, client: str) -> web.StreamResponse:
        """Answer a batch in pieces of about BATCH_PIECE_BYTES: a small batch as one ordinary
        reply, a large one as a stream, so the node holds one piece at a time, not the whole
        batch's answers (up to 25 MB, twice over while joining)."""
        if not batch:
            return _reply(_encode(_error(None, RpcError(INVALID_REQUEST, "empty batch"))))
        if len(batch) > self.config.batch_items:
            return _reply(_encode(_error(None, RpcError(
                INVALID_REQUEST, f"batch too large: {len(batch)} requests, limit {self.config.batch_items}"))))
        response, piece, size = None, [], 0
        async for answer in self._batch_answers(batch, client):
            piece.append(answer)
            size += len(answer) + 1
            if size >= BATCH_PIECE_BYTES:
                opening = b"[" if response is None else b","
                if response is None:
                    response = web.StreamResponse(headers={"Content-Type": "application/json"})
                    await response.prepare(request)
                await response.write(opening + b",".join(piece))
                piece, size = [], 0
        if response is None:
            return _reply(b"[" + b",".join(piece) + b"]") if piece else web.Response(status=204)  # 204: notifications
        await response.write_eof((b"," + b",".join(piece) if piece else b"") + b"]")
        return response

    async def _batch_answers(self, batch: list, client: str):
        """The answers to a batch's calls, in order, each call in its own turn. Calls after the
        batch's work budget or its answers' byte cap is used up are not run and get the error."""
        spent = 0.0
        room = self.config.batch_response_bytes
        batch_full = _too_large(f"the batch's answers exceed {self.config.batch_response_bytes} bytes")
        for item in batch:
            if spent >= self.config.batch_budget:
                answer = _refusal(item, budget_exceeded(self.config.batch_budget))
            elif room < 0:
                answer = _refusal(item, batch_full)
            else:
                answer, seconds = await self._take_turn(
                    self._answer, item, client, min(self.config.call_budget, self.config.batch_budget - spent))
                spent += seconds
                if answer is not None and len(answer) > room:
                    room = -1  # the cap is reached: this call and every one after it get the error
                    answer = _refusal(item, batch_full)
                elif answer is not None and len(answer) > self.config.response_bytes:
                    answer = _refusal(item, _too_large(f"{len(answer)} bytes, limit {self.config.response_bytes}"))
                elif answer is not None:
                    room -= len(answer)
            if answer is not None:
                yield answer

    def _answer(self, request, client: str, budget: float) -> tuple[bytes | None, float]:
        """Run one call under its budget and encode the answer (None for a notification);
        with the seconds it took, which a batch adds up against its own budget."""
        started = time.monotonic()
        with request_context(client, budget):
            response = self.dispatch(request)
        return (None if response is None else _encode(response)), time.monotonic() - started

    def dispatch(self, request) -> dict | None:
        """Run one request object; None for a notification (no id)."""
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: not a JSON object"))
        request_id = request.get("id")
        if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return _error(None, RpcError(INVALID_REQUEST,
                                         "invalid request: id must be a string, an integer of at most 64 bits, or null"))
        method = request.get("method")
        if request.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return _error(request_id, RpcError(INVALID_REQUEST, 'invalid request: need "jsonrpc": "2.0" and a method'))
        try:
            result = self.call(method, request.get("params", []))
        except RpcError as exc:
            response = _error(request_id, exc)
        except Exception:  # a bug in a method must not take the node down or leak a traceback
            log.exception("internal error in %s", method)
            response = _error(request_id, RpcError(INTERNAL_ERROR, f"internal error in {method}"))
        else:
            response = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return response if "id" in request else None

    def call(self, method: str, params):
        handler = self.methods.get(method)
        if handler is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method} does not exist/is not available")
        if params is None:
            params = []
        if not isinstance(params, list):
            raise RpcError(INVALID_PARAMS, "invalid params: positional parameters (a JSON array) expected")
        try:
            self.signatures[method].bind(*params)
        except TypeError:
            accepted = self.signatures[method].parameters.values()
            required = sum(1 for p in accepted if p.default is inspect.Parameter.empty)
            raise RpcError(INVALID_PARAMS, f"invalid params: {method} takes {required} to {len(accepted)} "
                                           f"arguments, got {len(params)}") from None
        return handler(*params)


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))


def parse_request(body: bytes):
    """The JSON value of a request body, or a parse error (-32700) if it is not JSON or is
    shaped beyond MAX_JSON_CONTAINERS / MAX_JSON_DEPTH. Both bounds are checked on the bytes
    before any Python object is built. Integers beyond 64 bits parse as floats (orjson), which
    no parameter parser accepts; numbers too big even for a float are a parse error."""
    containers = body.count(b"[") + body.count(b"{")  # brackets inside strings count too: a safe overestimate
    if containers > MAX_JSON_CONTAINERS:
        raise RpcError(PARSE_ERROR, f"parse error: more than {MAX_JSON_CONTAINERS} arrays and objects")
    if containers > MAX_JSON_DEPTH and _nesting_depth(body) > MAX_JSON_DEPTH:
        raise RpcError(PARSE_ERROR, f"parse error: nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RpcError(PARSE_ERROR, f"parse error: {exc}") from None


def _nesting_depth(body: bytes) -> int:
    """How deep arrays and objects nest in `body`, brackets inside strings not counted."""
    depth = deepest = 0
    for bracket in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _encode(response: dict) -> bytes:
    try:
        return orjson.dumps(response)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits (a PoW difficulty, say): the slow, exact way
        return json.dumps(response, separators=(",", ":")).encode()


def _error(request_id, error: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}


def _refusal(request, error: RpcError) -> bytes | None:
    """The answer to a batch call that was not run; none for a notification."""
    if isinstance(request, dict) and "id" not in request:
        return None
    request_id = request.get("id") if isinstance(request, dict) else None
    return _encode(_error(request_id if isinstance(request_id, (str, int)) else None, error))


def _too_large(detail: str) -> RpcError:
    return RpcError(RESPONSE_TOO_LARGE, f"response too large: {detail}")


def _reply(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _http_error(status: int, message: str) -> web.Response:
    return _reply(_encode(_error(None, RpcError(INVALID_REQUEST, message))), status)
