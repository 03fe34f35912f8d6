"""`gridnode market …`: the market contracts' common calls from the command line, as a wallet
makes them: contract addresses and ABIs come from the node's `grid_contracts`, calls are
ABI-encoded `eth_call`s, and every state change is an EIP-1559 transaction signed locally with
`--key` and sent with `eth_sendRawTransaction`. A call the contract refuses is reported with
its revert reason (checked with `eth_estimateGas` before anything is signed).

Amounts are read and shown in each token's own units: fiat with its decimals (12.50 GUSD is
1250 base units), energy tokens in Wh, elecoins with 18 decimals; `--json` prints one object
with every amount in base units."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from eth_abi import decode, encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_account import Account

from cli.errors import CommandError
from cli.rpc_client import RpcClient
from vm.constants import ELECOIN_DECIMALS
from vm.crypto import keccak256
from vm.types import Address

DEFAULT_RPC = "http://127.0.0.1:8545"
RECEIPT_TIMEOUT = 60.0
"""Seconds to wait for a sent transaction's receipt."""
TOKENS = {"fiat": "FiatToken", "energy": "EnergyToken"}
"""The token names the commands accept, and the contract each one is."""


# -- the contracts, from grid_contracts ------------------------------------------------------
def _signature(entry: dict) -> str:
    return f"{entry['name']}({','.join(_abi_type(i) for i in entry['inputs'])})"


def _abi_type(param: dict) -> str:
    """The canonical type of an ABI parameter (tuples spelled out)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){kind[5:]}"
    return kind


@dataclass(frozen=True)
class Contract:
    name: str
    address: str
    abi: list[dict]

    def function(self, name: str) -> dict:
        for entry in self.abi:
            if entry.get("type") == "function" and entry["name"] == name:
                return entry
        raise CommandError(f"the node's {self.name} has no function {name}: is it the market this command knows?")

    def calldata(self, name: str, args: tuple) -> str:
        entry = self.function(name)
        types = [_abi_type(i) for i in entry["inputs"]]
        try:
            encoded = encode(types, list(args))
        except (EncodingError, OverflowError, TypeError, ValueError) as exc:
            raise CommandError(f"{self.name}.{name}: bad argument: {exc}") from None
        return "0x" + (keccak256(_signature(entry).encode())[:4] + encoded).hex()

    def results(self, name: str, data: str) -> tuple:
        types = [_abi_type(o) for o in self.function(name)["outputs"]]
        try:
            return tuple(decode(types, bytes.fromhex(data[2:])))
        except (DecodingError, ValueError) as exc:
            raise CommandError(f"{self.name}.{name}: cannot decode the answer: {exc}") from None

    def events(self, logs: list[dict]) -> list[dict]:
        """This contract's logs of a receipt, decoded: [{"event": name, field: value, …}]."""
        by_topic = {keccak256(_signature(e).encode()): e for e in self.abi if e.get("type") == "event"}
        decoded = []
        for log in logs:
            if log["address"].lower() != self.address.lower() or not log["topics"]:
                continue
            entry = by_topic.get(bytes.fromhex(log["topics"][0][2:]))
            if entry is None:
                continue
            indexed = [i for i in entry["inputs"] if i.get("indexed")]
            plain = [i for i in entry["inputs"] if not i.get("indexed")]
            values = dict(zip((i["name"] for i in plain),
                              decode([_abi_type(i) for i in plain], bytes.fromhex(log["data"][2:]))))
            for param, topic in zip(indexed, log["topics"][1:]):
                values[param["name"]] = decode([_abi_type(param)], bytes.fromhex(topic[2:]))[0]
            decoded.append({"event": entry["name"], **{i["name"]: _plain(values[i["name"]]) for i in entry["inputs"]}})
        return decoded


def _plain(value):
    """An ABI value as JSON: addresses checksummed, bytes as hex, lists element by element."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return Address.from_hex(value).to_checksum()
    return value


class Market:
    """The node's contracts and, with a key, a wallet that sends transactions to them."""

    def __init__(self, rpc: str, key: str | None = None) -> None:
        self.client = RpcClient(rpc, timeout=30.0)
        listing = self.client.call("grid_contracts")  # {name: {address, abi}}
        self.contracts = {name: Contract(name, Address.from_hex(entry["address"]).to_checksum(), entry["abi"])
                          for name, entry in listing.items() if entry["address"] is not None}
        self.account = _account(key) if key else None
        self._chain_id: int | None = None

    def contract(self, name: str) -> Contract:
        if name not in self.contracts:
            raise CommandError(f"the node serves no {name} contract (grid_contracts lists "
                               f"{', '.join(sorted(self.contracts)) or 'none'})")
        return self.contracts[name]

    @property
    def sender(self) -> str:
        if self.account is None:
            raise CommandError("this command sends a transaction: give the sender's private key with --key")
        return self.account.address

    def call(self, name: str, function: str, *args) -> tuple:
        """A view call (eth_call at the latest block), from the --key account when there is one."""
        contract = self.contract(name)
        request = {"to": contract.address, "data": contract.calldata(function, args)}
        if self.account:
            request["from"] = self.account.address
        try:
            data = self.client.call("eth_call", request, "latest")
        except CommandError as exc:
            raise CommandError(_reason(exc, f"{name}.{function}")) from None
        return contract.results(function, data)

    def transact(self, name: str, function: str, *args, value: int = 0) -> dict:
        """Send `function(args)` to the contract, wait for the receipt; returns the receipt with
        the contract's decoded events under "events". A refused call raises with its reason."""
        contract = self.contract(name)
        sender = self.sender
        data = contract.calldata(function, args)
        request = {"from": sender, "to": contract.address, "data": data, "value": hex(value)}
        try:
            gas = int(self.client.call("eth_estimateGas", request), 16)
        except CommandError as exc:
            raise CommandError(_reason(exc, f"{name}.{function}")) from None
        if self._chain_id is None:
            self._chain_id = int(self.client.call("eth_chainId"), 16)
        nonce = int(self.client.call("eth_getTransactionCount", sender, "pending"), 16)
        tip = int(self.client.call("eth_maxPriorityFeePerGas"), 16)
        base_fee = int(self.client.call("eth_getBlockByNumber", "latest", False)["baseFeePerGas"], 16)
        signed = self.account.sign_transaction({
            "type": 2, "chainId": self._chain_id, "nonce": nonce, "to": contract.address, "value": value,
            "data": data, "gas": gas + gas // 5,  # headroom: state may move between estimate and inclusion
            "maxPriorityFeePerGas": tip, "maxFeePerGas": 2 * base_fee + tip})
        tx_hash = self.client.call("eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
        receipt = self._receipt(tx_hash)
        if receipt["status"] != "0x1":
            raise CommandError(f"{name}.{function} reverted in block {int(receipt['blockNumber'], 16)} "
                               f"(transaction {tx_hash}): {self._replay_reason(request, receipt)}")
        receipt["events"] = [event for c in self.contracts.values() for event in c.events(receipt["logs"])]
        return receipt

    def ensure_allowance(self, token: str, spender: str, amount: int) -> dict | None:
        """Approve `spender` for `amount` of the token unless the allowance already covers it."""
        (allowance,) = self.call(token, "allowance", self.sender, spender)
        if allowance >= amount:
            return None
        return self.transact(token, "approve", spender, amount)

    def _receipt(self, tx_hash: str) -> dict:
        deadline = time.monotonic() + RECEIPT_TIMEOUT
        while time.monotonic() < deadline:
            receipt = self.client.call("eth_getTransactionReceipt", tx_hash)
            if receipt:
                return receipt
            time.sleep(0.2)
        raise CommandError(f"no receipt for {tx_hash} after {RECEIPT_TIMEOUT:.0f} s")

    def _replay_reason(self, request: dict, receipt: dict) -> str:
        """Why a mined transaction failed: the same call replayed on the state before its block."""
        before = hex(int(receipt["blockNumber"], 16) - 1)
        try:
            self.client.call("eth_call", request, before)
        except CommandError as exc:
            return _reason(exc, "")
        return "reverted (the reason is not known: the state changed within the block)"


def _reason(exc: CommandError, what: str) -> str:
    """The node's error without the RPC method in front, e.g. `fiat: transfer amount exceeds
    balance` (contract reasons name their contract); a bare revert is named by `what`."""
    message = str(exc)
    for method in ("eth_estimateGas: ", "eth_call: "):
        message = message.removeprefix(method)
    message = message.removeprefix("execution reverted: ")
    if message in ("execution reverted", "") and what:
        return f"{what} reverted without a reason"
    return message


def _account(key: str):
    text = key.strip().removeprefix("0x")
    try:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError
        return Account.from_key(raw)
    except ValueError:
        raise CommandError("--key must be a private key: 32 bytes as hex (0x…)") from None


# -- amounts ------------------------------------------------------------------------------
def parse_amount(text: str, decimals: int, what: str) -> int:
    """'12.5' of a 2-decimal token → 1250 base units; refuses more decimals than the token has."""
    try:
        number = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise CommandError(f"{what}: {text!r} is not a number") from None
    units = number * (Decimal(10) ** decimals)
    if not number.is_finite() or units != units.to_integral_value() or units < 0:
        raise CommandError(f"{what}: {text!r} is not a non-negative amount with at most {decimals} decimals")
    return int(units)


def show_amount(units: int, decimals: int, trim: bool = False) -> str:
    """1250 base units of a 2-decimal token → '12.50'; with `trim`, trailing zeros go (elecoins)."""
    if decimals == 0:
        return f"{units:,}"
    whole, fraction = divmod(units, 10**decimals)
    text = f"{whole:,}.{fraction:0{decimals}d}"
    return (text.rstrip("0").rstrip(".") if fraction else f"{whole:,}") if trim else text


def _address(text: str, what: str) -> str:
    try:
        return Address.from_hex(text).to_checksum()
    except ValueError as exc:
        raise CommandError(f"{what}: {exc}") from None


class Units:
    """Each token's symbol and decimals, read once from the chain."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._cache: dict[str, tuple[str, int]] = {}

    def of(self, token: str) -> tuple[str, int]:
        if token not in self._cache:
            (symbol,) = self.market.call(token, "symbol")
            (decimals,) = self.market.call(token, "decimals")
            self._cache[token] = (symbol, decimals)
        return self._cache[token]

    def fiat(self, units: int) -> str:
        symbol, decimals = self.of("FiatToken")
        return f"{show_amount(units, decimals)} {symbol}"


# -- the commands -----------------------------------------------------------------------
def _emit(args: argparse.Namespace, result: dict, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    else:
        print("\n".join(lines))


def _tx_line(receipt: dict) -> str:
    return (f"transaction {receipt['transactionHash']} succeeded in block {int(receipt['blockNumber'], 16)}, "
            f"gas used {int(receipt['gasUsed'], 16):,}")


def _tx_result(receipts: list[dict | None]) -> dict:
    done = [r for r in receipts if r]
    return {"transactions": [r["transactionHash"] for r in done],
            "events": [e for r in done for e in r["events"]]}


def run_contracts(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    listing = {name: {"address": c.address, "abi": c.abi} for name, c in market.contracts.items()}
    lines = [f"{name:<17}{c.address}  {sum(1 for e in c.abi if e.get('type') == 'function')} functions"
             for name, c in market.contracts.items()]
    _emit(args, listing, lines + ["ABIs: --json (the node's grid_contracts)"])
    return 0


def run_balances(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    account = _address(args.address, "ADDRESS") if args.address else market.sender
    units = Units(market)
    elecoin = int(market.client.call("eth_getBalance", account, "latest"), 16)
    result, lines = {"address": account, "elecoin": elecoin}, [f"account {account}",
                                                                 f"  elecoin  {show_amount(elecoin, ELECOIN_DECIMALS, trim=True)} ELC"]
    for key, token in TOKENS.items():
        (balance,) = market.call(token, "balanceOf", account)
        symbol, decimals = units.of(token)
        result[key] = balance
        lines.append(f"  {key:<8} {show_amount(balance, decimals)} {symbol}")
    _emit(args, result, lines)
    return 0


def run_mint(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    token = TOKENS[args.token]
    symbol, decimals = Units(market).of(token)
    to, amount = _address(args.to, "TO"), parse_amount(args.amount, decimals, "AMOUNT")
    receipt = market.transact(token, "mint", to, amount)
    _emit(args, {"token": args.token, "to": to, "amount": amount, **_tx_result([receipt])},
          [f"minted {show_amount(amount, decimals)} {symbol} to {to}", _tx_line(receipt)])
    return 0


def run_mint_watts(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    prosumer = _address(args.prosumer, "PROSUMER")
    if args.wh is None:
        (wh,) = market.call("EnergyToken", "mintable", prosumer)
        if wh == 0:
            raise CommandError(f"nothing to mint: the generation metered for {prosumer} is all minted")
    else:
        wh = parse_amount(args.wh, 0, "WH")
    receipt = market.transact("EnergyToken", "mintWatts", prosumer, wh)
    _emit(args, {"prosumer": prosumer, "wh": wh, **_tx_result([receipt])},
          [f"minted {wh:,} Wh of energy tokens to {prosumer} against its metered generation", _tx_line(receipt)])
    return 0


def run_transfer(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    token = TOKENS[args.token]
    symbol, decimals = Units(market).of(token)
    to, amount = _address(args.to, "TO"), parse_amount(args.amount, decimals, "AMOUNT")
    receipt = market.transact(token, "transfer", to, amount)
    _emit(args, {"token": args.token, "to": to, "amount": amount, **_tx_result([receipt])},
          [f"sent {show_amount(amount, decimals)} {symbol} to {to}", _tx_line(receipt)])
    return 0


def run_price(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    _, fiat_decimals = units.of("FiatToken")
    receipts: list[dict | None] = []
    lines = []
    if args.price is not None:
        price = parse_amount(args.price, fiat_decimals, "PRICE")
        receipts.append(market.transact("ElecoinExchange", "postPrice", price))
        lines += [f"posted {units.fiat(price)} per elecoin", _tx_line(receipts[-1])]
    if args.fund is not None:
        amount = parse_amount(args.fund, ELECOIN_DECIMALS, "--fund")
        receipts.append(market.transact("ElecoinExchange", "fund", value=amount))
        lines += [f"added {show_amount(amount, ELECOIN_DECIMALS, trim=True)} ELC to the reserve", _tx_line(receipts[-1])]
    (low,), (high,) = market.call("ElecoinExchange", "minPrice"), market.call("ElecoinExchange", "maxPrice")
    (servers,) = market.call("ElecoinExchange", "servers")
    listing = []
    for server in servers:
        (price,), (reserve,) = market.call("ElecoinExchange", "priceOf", server), \
            market.call("ElecoinExchange", "reserveOf", server)
        listing.append({"server": _plain(server), "price": price, "reserve": reserve})
    lines.append(f"price bounds {units.fiat(low)} .. {units.fiat(high)} per elecoin")
    lines += [f"  {s['server']}  {units.fiat(s['price'])} per ELC, reserve "
              f"{show_amount(s['reserve'], ELECOIN_DECIMALS, trim=True)} ELC" for s in listing] or ["  no edge server sells"]
    _emit(args, {"minPrice": low, "maxPrice": high, "servers": listing, **_tx_result(receipts)}, lines)
    return 0


def run_buy(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    elecoins = parse_amount(args.elecoins, ELECOIN_DECIMALS, "ELECOINS")
    server = _address(args.server, "--server") if args.server else _cheapest_server(market, elecoins)
    (cost,) = market.call("ElecoinExchange", "quote", server, elecoins)
    approval = market.ensure_allowance("FiatToken", market.contract("ElecoinExchange").address, cost)
    receipt = market.transact("ElecoinExchange", "buyToken", server, elecoins)
    lines = ([_tx_line(approval)] if approval else []) + [
        f"bought {show_amount(elecoins, ELECOIN_DECIMALS, trim=True)} ELC from {server} for {units.fiat(cost)}", _tx_line(receipt)]
    _emit(args, {"server": server, "elecoins": elecoins, "paid": cost, **_tx_result([approval, receipt])}, lines)
    return 0


def _cheapest_server(market: Market, elecoins: int) -> str:
    (servers,) = market.call("ElecoinExchange", "servers")
    offers = []
    for server in servers:
        (price,), (reserve,) = market.call("ElecoinExchange", "priceOf", server), \
            market.call("ElecoinExchange", "reserveOf", server)
        if price and reserve >= elecoins:
            offers.append((price, _plain(server)))
    if not offers:
        raise CommandError("no edge server has a posted price and a reserve this large")
    return min(offers)[1]


def run_reading(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    prosumer = _address(args.prosumer, "PROSUMER")
    amounts = (args.generation, args.consumption, args.battery)
    if all(a is None for a in amounts):
        slot = args.slot if args.slot is not None else market.call("Meters", "lastSlot", prosumer)[0]
        posted, generation, consumption, battery = market.call("Meters", "reading", prosumer, slot)
        result = {"prosumer": prosumer, "slot": slot, "posted": posted, "generationWh": generation,
                  "consumptionWh": consumption, "batteryWh": battery}
        _emit(args, result, [f"{prosumer}, slot {slot}: " + (
            f"generation {generation:,} Wh, consumption {consumption:,} Wh, battery {battery:,} Wh" if posted
            else "no reading posted")])
        return 0
    generation, consumption, battery = (parse_amount(a or "0", 0, flag) for a, flag in
                                        zip(amounts, ("--generation", "--consumption", "--battery")))
    slot = args.slot if args.slot is not None else market.call("Meters", "currentSlot")[0]
    receipt = market.transact("Meters", "postReading", prosumer, slot, generation, consumption, battery)
    _emit(args, {"prosumer": prosumer, "slot": slot, "generationWh": generation, "consumptionWh": consumption,
                 "batteryWh": battery, **_tx_result([receipt])},
          [f"posted slot {slot} for {prosumer}: generation {generation:,} Wh, consumption {consumption:,} Wh, "
           f"battery {battery:,} Wh", _tx_line(receipt)])
    return 0


def run_offer(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    _, fiat_decimals = units.of("FiatToken")
    amount = parse_amount(args.amount, 0, "AMOUNT_WH")
    price = parse_amount(args.price, fiat_decimals, "PRICE")  # fiat base units per kWh: '0.25' GUSD → 25
    if args.expires_in <= 0:
        raise CommandError("--expires-in must be a positive number of seconds")
    expiry = int(market.client.call("eth_getBlockByNumber", "latest", False)["timestamp"], 16) + args.expires_in
    approval = market.ensure_allowance("EnergyToken", market.contract("Offers").address, amount)
    receipt = market.transact("Offers", "makeOffer", amount, price, expiry)
    made = next(e for e in receipt["events"] if e["event"] == "OfferMade")
    lines = ([_tx_line(approval)] if approval else []) + [
        f"offer #{made['offerId']}: {amount:,} Wh at {units.fiat(price)}/kWh until timestamp {expiry}",
        _tx_line(receipt)]
    _emit(args, {"offerId": made["offerId"], "amountWh": amount, "pricePerKWh": price, "expiry": expiry,
                 **_tx_result([approval, receipt])}, lines)
    return 0


def run_offers(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    (ids,) = market.call("Offers", "openOffers")
    offers = []
    for offer_id in ids:
        seller, amount, remaining, price, expiry, is_open = market.call("Offers", "offer", offer_id)
        offers.append({"offerId": offer_id, "seller": _plain(seller), "amountWh": amount, "remainingWh": remaining,
                       "pricePerKWh": price, "expiry": expiry, "open": is_open})
    lines = [f"#{o['offerId']:<4} {o['remainingWh']:>10,} of {o['amountWh']:,} Wh at {units.fiat(o['pricePerKWh'])}/kWh"
             f"  seller {o['seller']}  expires {o['expiry']}" for o in offers] or ["no open offers"]
    _emit(args, {"offers": offers}, lines)
    return 0


def run_allocate(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    amount = parse_amount(args.amount, 0, "AMOUNT_WH")
    receipt = market.transact("Offers", "allocateEnergy", args.offer, amount)
    allocated = next(e for e in receipt["events"] if e["event"] == "EnergyAllocated")
    receipts, lines = [receipt], [f"allocation #{allocated['allocationId']}: {amount:,} Wh of offer #{args.offer} "
                                  f"for {units.fiat(allocated['amountFiat'])}", _tx_line(receipt)]
    if args.pay:
        receipts += _escrow(market, allocated["allocationId"], allocated["amountFiat"])
        lines += [f"escrowed {units.fiat(allocated['amountFiat'])}"] + [_tx_line(r) for r in receipts[1:] if r]
    _emit(args, {"allocationId": allocated["allocationId"], "amountWh": amount, "amountFiat": allocated["amountFiat"],
                 "escrowed": args.pay, **_tx_result(receipts)}, lines)
    return 0


def _escrow(market: Market, allocation_id: int, amount_fiat: int) -> list[dict | None]:
    approval = market.ensure_allowance("FiatToken", market.contract("Offers").address, amount_fiat)
    return [approval, market.transact("Offers", "allowTransaction", allocation_id)]


def run_pay(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    amount_fiat = market.call("Offers", "allocation", args.allocation)[3]
    receipts = _escrow(market, args.allocation, amount_fiat)
    _emit(args, {"allocationId": args.allocation, "amountFiat": amount_fiat, **_tx_result(receipts)},
          [f"escrowed {units.fiat(amount_fiat)} for allocation #{args.allocation}"] + [_tx_line(r) for r in receipts if r])
    return 0


def run_settle(args: argparse.Namespace) -> int:
    market = Market(args.rpc, args.key)
    units = Units(market)
    receipt = market.transact("Offers", "refund" if args.refund else "makeTransaction", args.allocation)
    event = next(e for e in receipt["events"] if e["event"] in ("TransactionMade", "Refunded"))
    line = (f"refunded {units.fiat(event['amountFiat'])} to {event['buyer']}, {event['amountWh']:,} Wh to "
            f"{event['seller']}" if args.refund else
            f"paid {units.fiat(event['amountFiat'])} to {event['seller']}, {event['amountWh']:,} Wh to {event['buyer']}")
    _emit(args, {"allocationId": args.allocation, **{k: v for k, v in event.items() if k != "event"},
                 **_tx_result([receipt])}, [line, _tx_line(receipt)])
    return 0


# -- the parser -------------------------------------------------------------------------
COMMANDS = {
    "contracts": ("the chain's contracts: names, addresses and (with --json) ABIs", run_contracts),
    "balances": ("elecoin, fiat and energy-token balances of an account", run_balances),
    "mint": ("mint fiat or energy tokens (the caller must be the token's issuer)", run_mint),
    "mint-watts": ("mint a prosumer's metered generation as energy tokens (its meter oracle only)", run_mint_watts),
    "transfer": ("send fiat or energy tokens (ERC-20 transfer)", run_transfer),
    "price": ("list the edge servers' elecoin prices; post your price or fund your reserve", run_price),
    "buy": ("buy elecoins for fiat from an edge server's reserve", run_buy),
    "reading": ("post a meter reading for a settlement slot (meter oracle), or show one", run_reading),
    "offer": ("put energy tokens on sale (escrowed in the Offers contract)", run_offer),
    "offers": ("list the open offers", run_offers),
    "allocate": ("reserve energy from an offer at its price per kWh (the cost rounded up to the fiat's base unit); "
                 "--pay escrows the fiat at once", run_allocate),
    "pay": ("escrow the fiat for an allocation (the buyer)", run_pay),
    "settle": ("pay the seller once the buyer's meter shows the delivery; --refund after expiry", run_settle),
}


def add_parsers(commands: argparse._SubParsersAction) -> None:
    market = commands.add_parser("market", help="trade on the market contracts",
                                 description="Call the market contracts (tokens, elecoin exchange, meters, offers) "
                                             "over JSON-RPC. Amounts are in each token's units: fiat with its "
                                             "decimals, energy in Wh, elecoins in ELC. `operator` runs paper "
                                             "004's scheduled auctions (RS1).")
    actions = market.add_subparsers(dest="action", metavar="ACTION", required=True)
    parsers = {}
    for name, (summary, run) in COMMANDS.items():
        parser = actions.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".")
        parser.add_argument("--rpc", default=DEFAULT_RPC, help=f"node RPC URL (default {DEFAULT_RPC})")
        parser.add_argument("--key", metavar="HEX", help="private key of the account that signs (0x…)")
        parser.add_argument("--json", action="store_true", help="print one JSON object, amounts in base units")
        parser.set_defaults(func=run)
        parsers[name] = parser
    parsers["balances"].add_argument("address", nargs="?", metavar="ADDRESS",
                                     help="the account (default: the --key account)")
    for name in ("mint", "transfer"):
        parsers[name].add_argument("token", choices=TOKENS, metavar="TOKEN", help="fiat or energy")
        parsers[name].add_argument("to", metavar="TO", help="recipient address")
        parsers[name].add_argument("amount", metavar="AMOUNT", help="in the token's units (e.g. 12.50 fiat, 500 Wh)")
    parsers["mint-watts"].add_argument("prosumer", metavar="PROSUMER", help="the prosumer the --key oracle meters")
    parsers["mint-watts"].add_argument("wh", nargs="?", metavar="WH", help="Wh to mint (default: all still mintable)")
    parsers["price"].add_argument("price", nargs="?", metavar="PRICE",
                                  help="post this price in fiat per elecoin (edge servers only)")
    parsers["price"].add_argument("--fund", metavar="ELC", help="add this many elecoins to your reserve")
    parsers["buy"].add_argument("elecoins", metavar="ELECOINS", help="elecoins to buy (e.g. 2.5)")
    parsers["buy"].add_argument("--server", help="the edge server to buy from (default: the cheapest with the reserve)")
    reading = parsers["reading"]
    reading.add_argument("prosumer", metavar="PROSUMER", help="the metered prosumer")
    reading.add_argument("--slot", type=int, help="settlement slot (default: the current slot; to show: the last posted)")
    reading.add_argument("--generation", metavar="WH", help="generation in the slot, Wh")
    reading.add_argument("--consumption", metavar="WH", help="consumption in the slot, Wh")
    reading.add_argument("--battery", metavar="WH", help="battery state of charge, Wh")
    parsers["offer"].add_argument("amount", metavar="AMOUNT_WH", help="energy to sell, Wh (energy tokens you hold)")
    parsers["offer"].add_argument("price", metavar="PRICE",
                                  help="price in fiat per kWh (e.g. 0.25: 0.25 GUSD/kWh; at most the fiat's decimals)")
    parsers["offer"].add_argument("--expires-in", type=int, default=3600, metavar="SECONDS",
                                  help="the offer's lifetime from the latest block (default 3600)")
    parsers["allocate"].add_argument("offer", type=int, metavar="OFFER", help="offer id")
    parsers["allocate"].add_argument("amount", metavar="AMOUNT_WH", help="energy to reserve, Wh")
    parsers["allocate"].add_argument("--pay", action="store_true", help="also escrow the fiat (approve and allowTransaction)")
    for name in ("pay", "settle"):
        parsers[name].add_argument("allocation", type=int, metavar="ALLOCATION", help="allocation id")
    parsers["settle"].add_argument("--refund", action="store_true",
                                   help="after the offer's expiry: return the fiat to the buyer and the energy to the seller")
    _add_operator(actions)


def _add_operator(actions: argparse._SubParsersAction) -> None:
    """`gridnode market operator`: paper 004's running scheme 1, a long-running process."""
    from cli.agent import add_auction_args, positive_int, add_wallet_args

    operator = actions.add_parser(
        "operator", help="VPP operator (paper 004's RS1): open an English auction every N blocks, collect the bids",
        description="Running scheme 1 (paper 004, the centralised approach): as the VPP operator (--key), open an "
                    "English auction through the AuctionFactory every --every blocks, each accepting bids for "
                    "--duration blocks, and withdraw each one's binding bid once it has ended. Blocks are the "
                    "unit: --every 10 opens an auction every 10 blocks. The k-th auction starts at block "
                    "s0 + k*every (s0 = the head when the operator starts + --start-delay) and ends at "
                    "start + duration - 1. One line per auction opened and per withdrawal (--json: one JSON "
                    "object per event). Runs until --count auctions are opened and collected, or until Ctrl-C / "
                    "SIGTERM: the call under way finishes, then a summary is printed.")
    add_wallet_args(operator, poll=0.25)
    operator.add_argument("--every", type=positive_int, required=True, metavar="BLOCKS",
                          help="blocks between the start blocks of consecutive auctions")
    add_auction_args(operator)
    operator.add_argument("--count", type=positive_int, metavar="N",
                          help="open N auctions, collect them, then exit (default: run until stopped)")
    operator.set_defaults(func=run_operator)


def run_operator(args: argparse.Namespace) -> int:
    from cli.agent import run_block_agent
    from market.agents.auction_schemes import ScheduledAuctions

    return run_block_agent(args, lambda client, report: ScheduledAuctions(
        client, report, args.every, args.duration, args.increment, args.start_delay, args.count,
        energy_wh=args.energy_wh))
