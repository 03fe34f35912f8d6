"""Bad input gets a clear error and loses nothing: every case below leaves the
node running, its balances untouched and its chain advancing."""
from __future__ import annotations

import json
import urllib.request

import pytest
import rlp
from eth_account import Account
from helpers import send, wallet
from web3.exceptions import ContractLogicError, Web3RPCError


def post(url: str, body: bytes) -> tuple[int, object]:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def rpc(url: str, method: str, params) -> dict:
    return post(url, json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode())[1]


@pytest.fixture(autouse=True)
def node_stays_intact(devnet, w3):
    """Around every test: the node answers, nothing was lost, blocks keep coming."""
    watched = [wallet(i).address for i in range(5)]
    balances = {a: w3.eth.get_balance(a) for a in watched}
    head = w3.eth.block_number
    yield
    assert devnet.alive(), "node died"
    assert w3.eth.get_block(head).number == head
    for address, before in balances.items():
        # a test may spend from its own sender, never more than it sent plus fees
        assert w3.eth.get_balance(address) <= before + 10**18
    assert w3.eth.get_block("latest").number >= head


def signed(account, **fields) -> bytes:
    tx = {"to": wallet(4).address, "value": 1, "gas": 21_000, "chainId": 1337,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, **fields}
    return bytes(account.sign_transaction(tx).raw_transaction)


def test_malformed_json(devnet):
    status, reply = post(devnet.url, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 200 and reply["error"]["code"] == -32700 and reply["id"] is None


def test_not_a_request_object(devnet):
    assert post(devnet.url, b'"hello"')[1]["error"]["code"] == -32600
    assert post(devnet.url, b"[]")[1]["error"]["code"] == -32600
    assert post(devnet.url, b'{"id": 1, "method": "eth_chainId"}')[1]["error"]["code"] == -32600


def test_unknown_method(devnet):
    reply = rpc(devnet.url, "eth_mine", [])
    assert reply["error"]["code"] == -32601 and "eth_mine" in reply["error"]["message"]


@pytest.mark.parametrize("method,params,fragment", [
    ("eth_getBalance", ["0x1234"], "20-byte address"),
    ("eth_getBalance", ["not hex", "latest"], "hex string"),
    ("eth_getBalance", [], "arguments"),
    ("eth_getBalance", ["0x" + "11" * 20, "latest", "extra"], "arguments"),
    ("eth_getBlockByNumber", ["0x1", "yes"], "true or false"),
    ("eth_getBlockByNumber", [{"bogus": 1}, False], "block"),
    ("eth_getTransactionReceipt", ["0xabc"], "hash"),
    ("eth_chainId", {"named": "params"}, "positional"),
    ("eth_call", ["not an object"], "call object"),
    ("eth_feeHistory", ["0x0", "latest", []], "blockCount"),
    ("eth_getLogs", [{"topics": "x"}], "topics"),
])
def test_wrong_params(devnet, method, params, fragment):
    reply = rpc(devnet.url, method, params)
    assert reply["error"]["code"] == -32602
    assert fragment in reply["error"]["message"]


def test_oversized_request(devnet):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                       "params": ["0x" + "00" * (6 * 1024 * 1024)]}).encode()
    status, reply = post(devnet.url, body)
    assert status == 413 and "too large" in reply["error"]["message"]


def test_oversized_transaction(devnet):
    huge = signed(wallet(1), data=b"\x01" * (130 * 1024), gas=3_000_000, nonce=0)
    reply = rpc(devnet.url, "eth_sendRawTransaction", ["0x" + huge.hex()])
    assert "oversized data" in reply["error"]["message"]


def test_batch_mixes_results_and_errors(devnet):
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
             {"jsonrpc": "2.0", "id": 2, "method": "nope"},
             {"jsonrpc": "2.0", "method": "eth_chainId"},  # a notification: no reply
             {"jsonrpc": "2.0", "id": 3, "method": "eth_getBalance", "params": ["bad"]}]
    status, replies = post(devnet.url, json.dumps(batch).encode())
    assert status == 200
    by_id = {r["id"]: r for r in replies}
    assert set(by_id) == {1, 2, 3}
    assert by_id[1]["result"] == "0x539"
    assert by_id[2]["error"]["code"] == -32601 and by_id[3]["error"]["code"] == -32602


def test_bad_signature(devnet, w3):
    raw = signed(wallet(1), nonce=w3.eth.get_transaction_count(wallet(1).address, "pending"))
    fields = rlp.decode(raw[1:])
    fields[-1] = (2**256 - 1).to_bytes(32, "big")  # s out of range
    forged = b"\x02" + rlp.encode(fields)
    reply = rpc(devnet.url, "eth_sendRawTransaction", ["0x" + forged.hex()])
    assert reply["error"]["code"] == -32000 and "invalid signature" in reply["error"]["message"]
    garbage = rpc(devnet.url, "eth_sendRawTransaction", ["0x02c0ffee"])
    assert "malformed" in garbage["error"]["message"]


def test_wrong_chain_id(devnet, w3):
    raw = signed(wallet(1), chainId=1, nonce=w3.eth.get_transaction_count(wallet(1).address, "pending"))
    with pytest.raises(Web3RPCError, match="invalid chain id"):
        w3.eth.send_raw_transaction(raw)


def test_unprotected_legacy_transaction(devnet, w3):
    tx = {"to": wallet(4).address, "value": 1, "gas": 21_000, "gasPrice": 10**10,
          "nonce": w3.eth.get_transaction_count(wallet(1).address, "pending")}
    raw = wallet(1).sign_transaction(tx).raw_transaction  # no chainId: pre-EIP-155
    with pytest.raises(Web3RPCError, match="replay-protected"):
        w3.eth.send_raw_transaction(raw)


def test_nonce_too_low(devnet, w3):
    alice = wallet(1)
    send(w3, alice, {"to": wallet(4).address, "value": 1, "gas": 21_000,
                     "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    used = w3.eth.get_transaction_count(alice.address) - 1
    with pytest.raises(Web3RPCError, match="nonce too low"):
        w3.eth.send_raw_transaction(signed(alice, nonce=used, value=2))


def test_known_transaction_is_harmless(devnet, w3):
    alice = wallet(2)
    raw = signed(alice, nonce=w3.eth.get_transaction_count(alice.address, "pending"))
    first = w3.eth.send_raw_transaction(raw)
    assert w3.eth.send_raw_transaction(raw) == first  # still pooled
    receipt = w3.eth.wait_for_transaction_receipt(first, timeout=30)
    assert w3.eth.send_raw_transaction(raw) == first  # already mined: same hash, nothing changes
    assert w3.eth.get_transaction_receipt(first) == receipt


def test_replacement_underpriced_then_accepted(devnet, w3):
    alice = wallet(3)
    nonce = w3.eth.get_transaction_count(alice.address, "pending") + 1  # behind a gap, so it stays pooled
    w3.eth.send_raw_transaction(signed(alice, nonce=nonce, maxFeePerGas=10**10, maxPriorityFeePerGas=10**9))
    with pytest.raises(Web3RPCError, match="replacement transaction underpriced"):
        w3.eth.send_raw_transaction(signed(alice, nonce=nonce, value=2, maxFeePerGas=10**10 + 1,
                                           maxPriorityFeePerGas=10**9 + 1))
    bumped = w3.eth.send_raw_transaction(signed(alice, nonce=nonce, value=3, maxFeePerGas=11 * 10**9,
                                                maxPriorityFeePerGas=11 * 10**8))
    gap_filler = w3.eth.send_raw_transaction(signed(alice, nonce=nonce - 1))
    assert w3.eth.wait_for_transaction_receipt(gap_filler, timeout=30).status == 1
    assert w3.eth.wait_for_transaction_receipt(bumped, timeout=30).status == 1
    assert w3.eth.get_transaction(bumped).value == 3


def test_insufficient_funds(devnet, w3):
    alice = wallet(1)
    balance = w3.eth.get_balance(alice.address)
    with pytest.raises(Web3RPCError, match=r"insufficient funds for gas \* price \+ value"):
        w3.eth.send_raw_transaction(signed(alice, value=balance,
                                           nonce=w3.eth.get_transaction_count(alice.address, "pending")))


def test_unregistered_sender(devnet, w3):
    stranger = Account.create()
    send(w3, wallet(1), {"to": stranger.address, "value": 10**18, "gas": 21_000,
                         "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    with pytest.raises(Web3RPCError, match="sender not registered"):
        w3.eth.send_raw_transaction(signed(stranger, nonce=0))
    assert w3.eth.get_balance(stranger.address) == 10**18


def test_contract_creation_refused(devnet, w3):
    tx = {"value": 0, "gas": 100_000, "chainId": 1337, "data": b"\x60\x00", "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9, "nonce": w3.eth.get_transaction_count(wallet(1).address, "pending")}
    with pytest.raises(Web3RPCError, match="contract creation is not supported"):
        w3.eth.send_raw_transaction(wallet(1).sign_transaction(tx).raw_transaction)


def test_reverting_native_call(devnet, w3, registry):
    """A prosumer may not register accounts: the receipt has status 0, eth_call tells why."""
    alice = wallet(1)
    call = registry.functions.register(Account.create().address, 1, "sneaky")
    with pytest.raises(ContractLogicError, match="registry: caller is not an admin"):
        call.call({"from": alice.address})
    tx = call.build_transaction({"from": alice.address, "gas": 200_000,
                                 "nonce": w3.eth.get_transaction_count(alice.address, "pending")})
    before = w3.eth.get_balance(alice.address)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(alice.sign_transaction(tx).raw_transaction), timeout=30)
    assert receipt.status == 0 and receipt.logs == []
    assert 21_000 < receipt.gasUsed < 200_000  # a revert refunds what it did not use
    assert w3.eth.get_balance(alice.address) == before - receipt.gasUsed * receipt.effectiveGasPrice
    reply = rpc(devnet.url, "eth_call", [{"from": alice.address, "to": registry.address, "data": tx["data"]},
                                        hex(receipt.blockNumber - 1)])
    assert reply["error"]["code"] == 3 and reply["error"]["data"].startswith("0x08c379a0")


def test_unknown_selector_reverts(devnet, registry):
    reply = rpc(devnet.url, "eth_call", [{"to": registry.address, "data": "0xdeadbeef"}, "latest"])
    assert reply["error"]["code"] == 3 and "unknown function selector" in reply["error"]["message"]
