"""The work one JSON-RPC request may do, and who asked for it.

The server opens a `RequestContext` around every call (one per call of a batch,
each deadline cut to what is left of the batch's budget); methods that loop over blocks, logs or undo logs
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
"""Seconds of work one call may take on the loop that also produces blocks: a quarter of the
shortest block interval, so a call never holds production back by more than that. geth bounds
eth_call with `--rpc.evmtimeout` (5 s) and log queries by count; Besu's is `--rpc-http-max-request-timeout`."""
DEFAULT_BATCH_BUDGET = 2.0
"""Seconds of work all calls of one batch may take together (time spent waiting for the
loop is not counted); calls left when it is used up get the budget error without running.
geth cuts a batch off at the HTTP request's timeout."""


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
        raise budget_exceeded(context.budget)


def budget_exceeded(budget: float) -> RpcError:
    return RpcError(SERVER_ERROR, f"request exceeded its work budget of {budget:g} s: "
                                  "narrow the query (fewer blocks, addresses or calls per batch)")


def current_client() -> str:
    context = _current.get()
    return context.client if context is not None else "local"
