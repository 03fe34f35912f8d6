"""`gridnode tx send`: sign a transfer locally and submit it over JSON-RPC, as a wallet does."""
from __future__ import annotations

import argparse
import getpass
import json
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from eth_account import Account

from cli.errors import CommandError
from cli.rpc_client import RpcClient
from node.keystore import load_key
from vm.types import Address

UNITS = {"wei": 0, "gwei": 9, "elc": 18, "elecoin": 18, "ether": 18, "eth": 18}


def parse_value(text: str) -> int:
    """'1000' (wei), '1.5elc', '2 ether', '30gwei' → wei."""
    cleaned = text.strip().lower().replace(" ", "")
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if cleaned.endswith(u)), "wei")
    number = cleaned[: len(cleaned) - len(unit)] if cleaned.endswith(unit) else cleaned
    try:
        wei = Decimal(number) * (Decimal(10) ** UNITS[unit])
    except InvalidOperation:
        raise CommandError(f"cannot read value {text!r}: use e.g. 1000, 1.5elc, 30gwei") from None
    if wei != wei.to_integral_value() or wei < 0:
        raise CommandError(f"value {text!r} is not a whole, non-negative number of wei")
    return int(wei)


def add_parsers(commands: argparse._SubParsersAction) -> None:
    tx = commands.add_parser("tx", help="sign and send transactions", description="Sign and send transactions.")
    actions = tx.add_subparsers(dest="action", metavar="ACTION", required=True)
    send = actions.add_parser("send", help="send elecoins to an address",
                              description="Sign an EIP-1559 transfer locally and send it with eth_sendRawTransaction.")
    send.add_argument("--rpc", default="http://127.0.0.1:8545", help="node RPC URL (default http://127.0.0.1:8545)")
    key = send.add_mutually_exclusive_group(required=True)
    key.add_argument("--from-key", metavar="HEX", help="sender's private key as hex")
    key.add_argument("--from-keyfile", type=Path, metavar="FILE",
                     help="sender's keystore file (password asked, or --password-file)")
    send.add_argument("--password-file", type=Path, help="password for --from-keyfile")
    send.add_argument("--to", required=True, help="recipient address")
    send.add_argument("--value", required=True, help="amount: wei, or with a unit: 1.5elc, 30gwei")
    send.add_argument("--data", default="0x", help="call data as hex (default none)")
    send.add_argument("--no-wait", action="store_true", help="print the hash and return without waiting for a receipt")
    send.add_argument("--json", action="store_true", help="print the receipt as JSON")
    send.set_defaults(func=run_send)


def _private_key(args: argparse.Namespace) -> bytes:
    try:
        if args.from_key:
            text = args.from_key[2:] if args.from_key.startswith("0x") else args.from_key
            key = bytes.fromhex(text)
            if len(key) != 32:
                raise ValueError("a private key is 32 bytes of hex")
            return key
        password = (args.password_file.read_text().splitlines()[0] if args.password_file
                    else getpass.getpass("Password: "))
        return load_key(args.from_keyfile, password)
    except (OSError, ValueError, KeyError) as exc:
        raise CommandError(f"cannot load the sender's key: {exc}") from None


def run_send(args: argparse.Namespace) -> int:
    key = _private_key(args)
    account = Account.from_key(key)
    client = RpcClient(args.rpc)
    try:
        recipient = Address.from_hex(args.to).to_checksum()
    except ValueError as exc:
        raise CommandError(f"--to: {exc}") from None
    chain_id = int(client.call("eth_chainId"), 16)
    nonce = int(client.call("eth_getTransactionCount", account.address, "pending"), 16)
    tip = int(client.call("eth_maxPriorityFeePerGas"), 16)
    base_fee = int(client.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
    value = parse_value(args.value)
    call = {"from": account.address, "to": recipient, "value": hex(value), "data": args.data}
    gas = int(client.call("eth_estimateGas", call), 16)
    signed = account.sign_transaction({"type": 2, "chainId": chain_id, "nonce": nonce, "to": recipient,
                                       "value": value, "data": args.data, "gas": gas,
                                       "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base_fee + tip})
    tx_hash = client.call("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
    print(f"sent {tx_hash}")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        receipt = client.call("eth_getTransactionReceipt", tx_hash)
        if receipt:
            if args.json:
                print(json.dumps(receipt, indent=2))
            else:
                status = "succeeded" if receipt["status"] == "0x1" else "FAILED"
                print(f"{status} in block {int(receipt['blockNumber'], 16)}, gas used {int(receipt['gasUsed'], 16)}")
            return 0 if receipt["status"] == "0x1" else 1
        time.sleep(0.25)
    raise CommandError(f"no receipt for {tx_hash} after 60 s")

