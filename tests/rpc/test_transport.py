"""The JSON-RPC transport: whatever arrives over HTTP gets a JSON-RPC answer
within its limits, only allowed callers are served, and no request, however
shaped, holds the loop that produces blocks for more than one call."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.main import restore_process_limits
from node.rpc.budget import check_budget
from node.rpc.errors import INVALID_REQUEST, METHOD_NOT_FOUND, PARSE_ERROR, SERVER_ERROR
from node.rpc.server import (BATCH_PIECE_BYTES, MAX_JSON_CONTAINERS, MAX_JSON_DEPTH, RESPONSE_TOO_LARGE,
                             JsonRpcServer, RpcConfig, collect_methods)

BENCH = Path(__file__).resolve().parents[2] / "bench" / "hostile_rpc.py"


class ToyApi:
    """Methods shaped like the node's, to drive the transport alone."""

    def __init__(self) -> None:
        self.iterations: list[int] = []
        """The loop iteration each eth_tick call ran in."""
        self.iteration = 0

    def eth_blob(self, size):
        return "x" * size

    def eth_echo(self, value):
        return value

    def eth_tick(self):
        self.iterations.append(self.iteration)
        return self.iteration

    def eth_spin(self):
        while True:
            check_budget()

    def eth_crash(self):
        raise KeyError("bug")

    def admin_secret(self):
        return "peers"


def serve(test, config: RpcConfig = RpcConfig(), api: ToyApi | None = None):
    """Run `test(client, api)` against an in-process server on 127.0.0.1."""
    api = api or ToyApi()

    async def main():
        async def count_iterations():
            while True:
                api.iteration += 1
                await asyncio.sleep(0)

        counter = asyncio.create_task(count_iterations())
        async with TestClient(TestServer(JsonRpcServer(collect_methods(api), config).app())) as client:
            try:
                return await test(client, api)
            finally:
                counter.cancel()

    return asyncio.run(main())


def call(method: str, *params, request_id=1) -> dict:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)}


async def post(client, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/", data=data, headers={"Content-Type": "application/json", **headers})
    text = await response.read()
    return response.status, json.loads(text) if text else None


# --- what a request may be --------------------------------------------------------------------

@pytest.mark.parametrize("body,fragment", [
    (b"[" * 200_000, "arrays and objects"),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nested deeper"),
    (b"[" + b",".join([b"[]"] * (MAX_JSON_CONTAINERS + 1)) + b"]", "arrays and objects"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_blob", "params": [1' + b"0" * 5000 + b"]}", "parse error"),
])
def test_bodies_beyond_the_json_limits_are_parse_errors(body, fragment):
    async def test(client, api):
        return await post(client, body), await post(client, call("eth_blob", 2))

    (status, reply), (_, after) = serve(test)
    assert status == 200 and reply["error"]["code"] == PARSE_ERROR and fragment in reply["error"]["message"]
    assert after["result"] == "xx"


def test_brackets_inside_strings_do_not_count_as_nesting():
    deep_string = "[" * (MAX_JSON_DEPTH * 2)
    batch = [call("eth_blob", 1, request_id=i) for i in range(MAX_JSON_DEPTH)] + [call("eth_echo", deep_string)]

    async def test(client, api):
        return await post(client, batch)

    status, replies = serve(test)
    assert status == 200 and replies[0]["result"] == "x" and replies[-1]["result"] == deep_string


def test_integers_beyond_64_bits_get_an_error_object():
    async def test(client, api):
        return await post(client, b'{"jsonrpc": "2.0", "id": 18446744073709551616, "method": "eth_tick"}')

    status, reply = serve(test)
    assert status == 200 and reply["error"]["code"] == INVALID_REQUEST and "64 bits" in reply["error"]["message"]


def test_a_batch_past_its_byte_cap_gets_errors_for_the_rest():
    batch = [call("eth_blob", 400, request_id=i) for i in range(10)]

    async def test(client, api):
        return await post(client, batch)

    status, replies = serve(test, RpcConfig(batch_response_bytes=1000))
    assert status == 200 and [r["id"] for r in replies] == list(range(10))
    assert [r["result"] for r in replies[:2]] == ["x" * 400] * 2
    for reply in replies[2:]:
        assert reply["error"]["code"] == RESPONSE_TOO_LARGE and "response too large" in reply["error"]["message"]
    assert len(json.dumps(replies)) < 1000 + 10 * 200


def test_a_small_batch_is_one_reply_and_a_large_one_streams_in_pieces_in_order():
    small = [call("eth_echo", i, request_id=i) for i in range(5)]
    large = [call("eth_blob", 10_000, request_id=i) for i in range(3 * BATCH_PIECE_BYTES // 10_000)]

    async def test(client, api):
        answers = []
        for batch in (small, large):
            response = await client.post("/", data=json.dumps(batch).encode(),
                                         headers={"Content-Type": "application/json"})
            answers.append((response.headers.get("Content-Length"), response.headers.get("Transfer-Encoding"),
                            json.loads(await response.read())))
        return answers

    (small_length, small_encoding, small_replies), (_, large_encoding, large_replies) = serve(test)
    assert small_length is not None and small_encoding is None  # one write, with its length
    assert [r["result"] for r in small_replies] == list(range(5))
    assert large_encoding == "chunked"  # streamed: the node never held the whole batch's answers
    assert [r["id"] for r in large_replies] == list(range(len(large))) and large_replies[-1]["result"] == "x" * 10_000


def test_one_answer_over_its_cap_is_an_error_and_the_next_call_is_served():
    async def test(client, api):
        return await post(client, call("eth_blob", 5000)), await post(client, call("eth_blob", 10))

    (_, big), (_, small) = serve(test, RpcConfig(response_bytes=1000))
    assert big["error"]["code"] == RESPONSE_TOO_LARGE and "limit 1000" in big["error"]["message"]
    assert small["result"] == "x" * 10


# --- what a request may cost ------------------------------------------------------------------

def test_calls_run_one_per_loop_iteration_however_many_arrive_together():
    """The block producer's timer runs between any two calls: no connection or batch stacks
    its calls into one iteration of the loop."""
    async def test(client, api):
        batches = [post(client, [call("eth_tick", request_id=i) for i in range(20)]) for _ in range(5)]
        singles = [post(client, call("eth_tick")) for _ in range(20)]
        await asyncio.gather(*batches, *singles)
        return api.iterations

    iterations = serve(test)
    assert len(iterations) == 120 and len(set(iterations)) == 120


def test_a_call_over_its_budget_and_a_batch_over_its_budget_get_error_objects():
    async def test(client, api):
        single = await post(client, call("eth_spin"))
        batch = await post(client, [call("eth_spin", request_id=1), call("eth_tick", request_id=2)])
        return single, batch

    (_, single), (_, batch) = serve(test, RpcConfig(call_budget=0.01, batch_budget=0.01))
    assert single["error"]["code"] == SERVER_ERROR and "work budget" in single["error"]["message"]
    assert [r["error"]["code"] for r in batch] == [SERVER_ERROR, SERVER_ERROR]


def test_an_internal_error_is_an_error_object():
    async def test(client, api):
        return await post(client, call("eth_crash"))

    _, reply = serve(test)
    assert reply["error"] == {"code": -32603, "message": "internal error in eth_crash"}


# --- who may call -----------------------------------------------------------------------------

@pytest.mark.parametrize("headers,status", [
    ({"Host": "evil.example"}, 403),
    ({"Host": "evil.example:8545"}, 403),
    ({"Host": "localhost:8545"}, 200),
    ({"Host": "[::1]:8545"}, 200),
    ({"Host": "127.0.0.1"}, 200),
    ({"Origin": "https://evil.example"}, 403),
    ({"Origin": "https://wallet.example"}, 200),
    ({"Content-Type": "text/plain"}, 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ({"Content-Type": "application/json; charset=utf-8"}, 200),
])
def test_host_origin_and_content_type_are_checked(headers, status):
    async def test(client, api):
        return await post(client, call("eth_tick"), **headers)

    got, reply = serve(test, RpcConfig(cors_origins=("https://wallet.example",)))
    assert got == status
    assert ("result" in reply) == (status == 200)


def test_a_browser_preflight_from_an_allowed_origin_is_answered():
    async def test(client, api):
        answers = {}
        for origin in ("https://wallet.example", "https://evil.example"):
            response = await client.options("/", headers={"Origin": origin,
                                                          "Access-Control-Request-Method": "POST"})
            answers[origin] = (response.status, response.headers.get("Access-Control-Allow-Origin"))
        return answers

    answers = serve(test, RpcConfig(cors_origins=("https://wallet.example",)))
    assert answers == {"https://wallet.example": (204, "https://wallet.example"),
                       "https://evil.example": (403, None)}


def test_admin_is_served_only_when_enabled():
    async def test(client, api):
        return await post(client, call("admin_secret"))

    _, default = serve(test)
    _, enabled = serve(test, RpcConfig(apis=("eth", "admin")))
    assert default["error"]["code"] == METHOD_NOT_FOUND
    assert enabled["result"] == "peers"


@pytest.mark.parametrize("config,host,fragment", [
    (RpcConfig(apis=("eth", "admin")), "0.0.0.0", "admin API would be reachable"),
    (RpcConfig(apis=("eth", "debug")), "127.0.0.1", "unknown API namespace debug"),
    (RpcConfig(call_budget=0), "127.0.0.1", "call budget must be positive"),
])
def test_unsafe_or_wrong_configurations_are_refused(config, host, fragment):
    with pytest.raises(ValueError, match=fragment):
        config.check(host)
    RpcConfig(apis=("eth", "admin"), allow_remote_admin=True).check("0.0.0.0")


# --- process-wide limits ----------------------------------------------------------------------

def test_a_raised_recursion_limit_is_restored_and_reported():
    original = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(100_000)
        assert restore_process_limits() == [
            "an imported module changed the recursion limit to 100000; restored 1000"]
        assert sys.getrecursionlimit() == 1000 and restore_process_limits() == []
    finally:
        sys.setrecursionlimit(original)


# --- a real node ------------------------------------------------------------------------------

def raw_post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, object]:
    request = urllib.request.Request(url, body, {"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def block_number(url: str) -> int:
    return int(raw_post(url, json.dumps(call("eth_blockNumber")).encode())[1]["result"], 16)


def test_deep_json_leaves_the_node_answering_with_its_recursion_limit_restored(devnet):
    status, reply = raw_post(devnet.url, b"[" * 200_000)
    assert status == 200 and reply["error"]["code"] == PARSE_ERROR
    assert devnet.alive() and block_number(devnet.url) >= 0
    assert "changed the recursion limit to 100000; restored 1000" in devnet.output


def test_the_node_refuses_form_posts_unknown_hosts_and_admin_by_default(devnet):
    assert raw_post(devnet.url, json.dumps(call("eth_chainId")).encode(), "text/plain")[0] == 415
    request = urllib.request.Request(devnet.url, json.dumps(call("eth_chainId")).encode(),
                                     {"Content-Type": "application/json", "Host": "rebound.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 403
    assert raw_post(devnet.url, json.dumps(call("admin_peers")).encode())[1]["error"]["code"] == METHOD_NOT_FOUND
    big = raw_post(devnet.url, json.dumps(call("eth_getBlockByNumber", 2**70, False)).encode())[1]
    assert big["error"]["code"] == -32602


@pytest.mark.slow
@pytest.mark.few_nodes
def test_flags_enable_admin_and_cap_batches(node_factory):
    node = node_factory(None, "--http-api", "eth,net,admin", "--rpc-batch-response-max-size", "3000")
    assert raw_post(node.url, json.dumps(call("admin_nodeInfo")).encode())[1]["result"]["id"]
    batch = [call("eth_getBlockByNumber", "0x0", True, request_id=i) for i in range(20)]
    replies = raw_post(node.url, json.dumps(batch).encode())[1]
    assert "result" in replies[0] and replies[-1]["error"]["code"] == RESPONSE_TOO_LARGE
    assert raw_post(node.url, json.dumps(call("txpool_status")).encode())[1]["error"]["code"] == METHOD_NOT_FOUND


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=20).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries({"jsonrpc": st.just("2.0"), "id": st.integers() | st.text(max_size=5),
                           "method": st.sampled_from(["eth_getBalance", "eth_getLogs", "eth_getBlockByNumber",
                                                      "eth_call", "eth_feeHistory", "eth_newFilter",
                                                      "grid_miningStats", "admin_peers"]),
                           "params": st.lists(st.none() | st.integers() | st.text(max_size=70) | st.booleans()
                                              | st.dictionaries(st.sampled_from(["address", "topics", "fromBlock",
                                                                                 "to", "data"]),
                                                                st.text(max_size=50) | st.integers(), max_size=3),
                                              max_size=3)}).map(lambda value: json.dumps(value).encode()),
))
def test_any_body_gets_a_json_rpc_answer_and_the_node_keeps_answering(devnet, body):
    status, reply = raw_post(devnet.url, body)
    assert status in (200, 204)
    answers = reply if isinstance(reply, list) else [reply] if reply is not None else []
    for answer in answers:
        assert answer["jsonrpc"] == "2.0" and ("result" in answer) != ("error" in answer)
        if "error" in answer:
            assert answer["error"]["code"] != -32603, answer
    assert block_number(devnet.url) >= 0


@pytest.mark.slow
@pytest.mark.few_nodes
def test_blocks_keep_coming_while_a_hostile_mix_runs(node_factory):
    """Block timestamps (chain data) over ~10 s of honest and hostile load."""
    node = node_factory(None, "--engine", "poa")
    result = subprocess.run([sys.executable, str(BENCH), "--rpc", node.url, "--seconds", "10",
                             "--pid", str(node.process.pid), "--json"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["node_up"] and node.alive()
    assert figures["honest"]["served"] > 0
    assert figures["hostile"]["errors"] > 0
    assert figures["block_gap"]["timestamps_max"] <= 2 * figures["block_interval"], figures
