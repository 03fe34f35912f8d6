"""JSON-RPC 2.0 over HTTP with aiohttp: single and batch requests, size and
batch limits, and an error object (never a traceback) for every bad input."""
from __future__ import annotations

import inspect
import json
import logging

from aiohttp import web

from node.rpc.errors import (INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR,
                             RpcError)

log = logging.getLogger("gridnode.rpc")

MAX_REQUEST_BYTES = 5 * 1024 * 1024
"""go-ethereum's HTTP body limit."""
MAX_BATCH_ITEMS = 1000
NAMESPACES = ("eth_", "net_", "web3_", "grid_", "txpool_", "admin_")


def collect_methods(*apis) -> dict:
    """Every public `<namespace>_<method>` of the API objects, by its RPC name."""
    methods = {}
    for api in apis:
        for name in dir(api):
            if name.startswith(NAMESPACES):
                methods[name] = getattr(api, name)
    return methods


class JsonRpcServer:
    def __init__(self, methods: dict, cors_origins: list[str] | None = None) -> None:
        self.methods = methods
        self.signatures = {name: inspect.signature(method) for name, method in methods.items()}
        self.cors_origins = cors_origins or []

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_post("/", self.handle_http)
        app.router.add_route("OPTIONS", "/", self.handle_preflight)
        return app

    def _cors(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and ("*" in self.cors_origins or origin in self.cors_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        return response

    async def handle_preflight(self, request: web.Request) -> web.StreamResponse:
        return self._cors(request, web.Response(status=204))

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            return self._reply(request, _error(None, RpcError(
                INVALID_REQUEST, f"request too large: {request.content_length} bytes, limit {MAX_REQUEST_BYTES}")), 413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._reply(request, _error(None, RpcError(
                INVALID_REQUEST, f"request too large: limit {MAX_REQUEST_BYTES} bytes")), 413)
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return self._reply(request, _error(None, RpcError(PARSE_ERROR, f"parse error: {exc}")))
        if isinstance(payload, list):
            if not payload:
                return self._reply(request, _error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(payload) > MAX_BATCH_ITEMS:
                return self._reply(request, _error(None, RpcError(
                    INVALID_REQUEST, f"batch too large: {len(payload)} requests, limit {MAX_BATCH_ITEMS}")))
            responses = [r for r in (self.dispatch(item) for item in payload) if r is not None]
            return self._reply(request, responses) if responses else self._cors(request, web.Response(status=204))
        response = self.dispatch(payload)
        return self._reply(request, response) if response is not None else self._cors(request, web.Response(status=204))

    def _reply(self, request: web.Request, payload, status: int = 200) -> web.StreamResponse:
        return self._cors(request, web.Response(text=json.dumps(payload), status=status,
                                                content_type="application/json"))

    def dispatch(self, request) -> dict | None:
        """Run one request object; None for a notification (no id)."""
        if not isinstance(request, dict):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: not a JSON object"))
        request_id = request.get("id")
        if not isinstance(request_id, (str, int, type(None))) or isinstance(request_id, bool):
            return _error(None, RpcError(INVALID_REQUEST, "invalid request: id must be a string, number or null"))
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


def _error(request_id, error: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.to_json()}
