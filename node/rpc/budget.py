"""The work one JSON-RPC request may do, and who asked for it.

The server opens a `RequestContext` around every call (one per call of a batch,
sharing the batch's deadline); methods that loop over blocks, logs or undo logs
call `check_budget()` once per step, so a request that would run too long ends
with a JSON-RPC error instead of holding the event loop that produces blocks
(go-ethereum's `--rpc.evmtimeout` and log-query limits play the same part).
`current_client()` names the caller, so per-client caps (filters) need no
plumbing through every method signature."""
from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

from node.rpc.errors import SERVER_ERROR, RpcError

DEFAULT_CALL_BUDGET = 0.25
"""Seconds of work one request (or one whole batch) may take on the node's loop."""


@dataclass(frozen=True)
class RequestContext:
    client: str
    """The caller: its remote address as the HTTP server saw it."""
    deadline: float
    """`time.monotonic()` value after which the request is aborted."""
    budget: float
    """The budget in seconds the deadline was set from (for the error message)."""


_current: ContextVar[RequestContext | None] = ContextVar("gridnode_rpc_request", default=None)


@contextlib.contextmanager
def request_context(client: str, budget: float = DEFAULT_CALL_BUDGET,
                    deadline: float | None = None) -> Iterator[RequestContext]:
    """Run a request under a budget; `deadline` (monotonic) lets a batch share one."""
    context = RequestContext(client, time.monotonic() + budget if deadline is None else deadline, budget)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def check_budget() -> None:
    """Raise a JSON-RPC error if the current request has used up its time.
    Outside a request (tests calling an API object directly) there is no limit."""
    context = _current.get()
    if context is not None and time.monotonic() > context.deadline:
        raise RpcError(SERVER_ERROR, f"request exceeded its work budget of {context.budget:g} s: "
                                     "narrow the query (fewer blocks, addresses or calls per batch)")


def current_client() -> str:
    context = _current.get()
    return context.client if context is not None else "local"
