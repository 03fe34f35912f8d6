"""`gridnode agent meter|seller|buyer|operator`: paper 002's agents as processes that trade
through a node's JSON-RPC like any wallet (market/agents/). Each runs until `--hours` market
hours have passed, or until Ctrl-C / SIGTERM, and prints one line per action (`--json`: one
JSON object per line, for scripts).

`gridnode agent auctioneer|bidder`: paper 004's running schemes (market/agents/auction_schemes.py)
on the block clock: an agent's own English auction (RS2), and a bidder in the factory's
auctions (RS3). `gridnode market operator` (RS1) reuses the wallet options and the clean stop."""
from __future__ import annotations

import argparse
import getpass
import json
import signal
import threading
from pathlib import Path

from cli.errors import CommandError
from node.keystore import load_key

DEFAULT_RPC = "http://127.0.0.1:8545"


def add_parsers(commands: argparse._SubParsersAction) -> None:
    agent = commands.add_parser(
        "agent", help="run a market agent (paper 002's traders, paper 004's auction agents) against a node",
        description="Run a market agent: it trades through JSON-RPC with its own key. Paper 002's meter, seller, "
                    "buyer and operator work in hourly batches (50 minutes negotiate, 10 confirm) on the chain's "
                    "clock (--time-scale makes an hour pass in seconds); paper 004's auctioneer and bidder count "
                    "blocks.")
    kinds = agent.add_subparsers(dest="kind", metavar="KIND", required=True)

    meter = kinds.add_parser("meter", help="meter oracle: post a reading each slot, mint energy tokens",
                             description="Post the prosumer's reading to Meters once per settlement slot, "
                                         "then mint its energy tokens against the reported generation "
                                         "(EnergyToken.mintWatts). --key is the oracle's key.")
    _common(meter)
    meter.add_argument("--prosumer", required=True, metavar="ADDRESS", help="the prosumer this meter reads")
    meter.add_argument("--csv", type=Path, metavar="FILE",
                        help="readings, one row per slot: generation_wh,consumption_wh[,battery_wh] with a header")
    meter.add_argument("--generation-wh", type=_whole, default=0, help="synthetic generation per slot, Wh")
    meter.add_argument("--consumption-wh", type=_whole, default=0, help="synthetic consumption per slot, Wh")
    meter.add_argument("--battery-wh", type=_whole, default=0, help="synthetic battery state of charge, Wh")
    meter.add_argument("--solar", action="store_true",
                       help="shape the synthetic generation as a clear day's PV curve (--generation-wh is the peak)")
    meter.add_argument("--no-mint", action="store_true", help="only post readings; do not call mintWatts")
    meter.set_defaults(func=run_meter)

    seller = kinds.add_parser("seller", help="seller: offer the surplus energy tokens each hour",
                              description="Each hour, while the negotiation is open, offer the energy-token "
                                          "balance above --keep-wh for the next hour at --price (fiat base "
                                          "units per kWh: with GUSD's 2 decimals, 25 = 0.25 GUSD/kWh).")
    _common(seller)
    seller.add_argument("--price", type=positive_int, default=25,
                        help="price in fiat base units (cents) per kWh (default 25 = 0.25 GUSD/kWh)")
    seller.add_argument("--keep-wh", type=_whole, default=0, help="energy kept for own use, not offered (Wh)")
    seller.add_argument("--min-offer-wh", type=positive_int, default=1, help="smallest offer worth publishing (Wh)")
    seller.set_defaults(func=run_seller)

    buyer = kinds.add_parser("buyer", help="buyer: buy the cheapest offers until the demand is met",
                             description="Each hour buy --demand-wh for the next hour from the cheapest offers "
                                         "(allocate, escrow the fiat), then settle once the meter shows delivery.")
    _common(buyer)
    buyer.add_argument("--demand-wh", type=positive_int, required=True, help="energy needed per hour (Wh)")
    buyer.add_argument("--max-price", type=positive_int,
                       help="highest acceptable price, fiat base units (cents) per kWh (e.g. 30 = 0.30 GUSD/kWh; "
                            "default: any)")
    buyer.add_argument("--buy-after-minute", type=_whole, default=0,
                       help="market minute of the hour before which not to buy, so sellers can post (default 0)")
    buyer.set_defaults(func=run_buyer)

    operator = kinds.add_parser("operator", help="microgrid operator: cover imbalance, admit members",
                                description="Late in each hour's negotiation, offer --capacity-wh at the grid "
                                            "price (minted as an EnergyToken issuer; the unsold rest is burned "
                                            "after expiry), and "
                                            "register the members requested in the --admit inbox file. "
                                            "--key must be a Registry admin's.")
    _common(operator)
    operator.add_argument("--grid-price", type=positive_int, default=30,
                          help="utility price in fiat base units (cents) per kWh (default 30 = 0.30 GUSD/kWh)")
    operator.add_argument("--capacity-wh", type=_whole, default=0,
                          help="energy the operator can import per hour (Wh; default 0: no grid offer)")
    operator.add_argument("--offer-after-minute", type=_whole, default=40,
                          help="market minute of the hour from which the grid energy is offered, once the "
                               "prosumers have traded (default 40)")
    operator.add_argument("--admit", type=Path, metavar="FILE",
                          help='inbox: JSON lines {"address", "role", "name"[, "oracle"]} to register')
    operator.set_defaults(func=run_operator)

    auctioneer = kinds.add_parser(
        "auctioneer", help="paper 004's RS2: open your own English auction, collect the binding bid",
        description="Running scheme 2 (paper 004, the secure approach): open an English auction owned by "
                    "--key through the AuctionFactory, starting --start-delay blocks after the current head "
                    "and lasting --duration blocks; after its end block withdraw the binding bid, then exit. "
                    "Blocks are the unit of time; amounts are elecoin wei.")
    add_wallet_args(auctioneer, poll=0.25)
    add_auction_args(auctioneer)
    auctioneer.set_defaults(func=run_auctioneer)

    bidder = kinds.add_parser(
        "bidder", help="bid in the factory's English auctions up to a limit, withdraw after the end",
        description="Bid in every auction the AuctionFactory made (running scheme 3's queries auctionCount/"
                    "auctionAt), or only the --auction ones: while an auction is open and this account does "
                    "not lead, raise its total to a step above the highest bid, at most --max-total wei per "
                    "auction; after the end report won/lost and withdraw what is owed. Runs until Ctrl-C or "
                    "SIGTERM. Blocks are the unit of time; amounts are elecoin wei.")
    add_wallet_args(bidder, poll=0.25)
    bidder.add_argument("--max-total", type=positive_int, required=True, metavar="WEI",
                        help="the most this account puts into one auction (wei)")
    bidder.add_argument("--step", type=positive_int, metavar="WEI",
                        help="how far above the highest bid to go (default: the auction's bid increment)")
    bidder.add_argument("--auction", action="append", default=[], metavar="ADDRESS",
                        help="bid only in this auction (repeatable; default: every auction the factory made)")
    bidder.set_defaults(func=run_bidder)


def add_auction_args(parser: argparse.ArgumentParser) -> None:
    """An auction's parameters, shared with `gridnode market operator`."""
    parser.add_argument("--duration", type=positive_int, required=True, metavar="BLOCKS",
                        help="blocks each auction accepts bids in (at least 2): end = start + duration - 1")
    parser.add_argument("--increment", type=_whole, required=True, metavar="WEI",
                        help="the bid increment in elecoin wei (how far a new leader's price rises above the old one)")
    parser.add_argument("--start-delay", type=positive_int, default=1, metavar="BLOCKS",
                        help="blocks between opening an auction and its start block (default 1)")
    parser.add_argument("--energy-wh", type=_whole, default=0, metavar="WH",
                        help="energy tokens (Wh) sold in each auction: escrowed in the auction when it opens, "
                             "settled to the winner (or back, if unsold) after the end (default 0: elecoins only)")


def add_wallet_args(parser: argparse.ArgumentParser, poll: float = 0.5) -> None:
    """--rpc, --key (hex, hex file or keystore), --password-file, --poll and --json: what every
    process that trades with its own key takes (the agents here, `gridnode market operator`)."""
    parser.add_argument("--rpc", default=DEFAULT_RPC, help=f"node RPC URL (default {DEFAULT_RPC})")
    parser.add_argument("--key", required=True, metavar="KEYFILE_OR_HEX",
                        help="the agent's private key: hex, a file holding hex, or a keystore file")
    parser.add_argument("--password-file", type=Path, help="password of a keystore --key (else asked)")
    parser.add_argument("--poll", type=float, default=poll, help=f"seconds between rounds (default {poll:g})")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")


def _common(parser: argparse.ArgumentParser) -> None:
    add_wallet_args(parser)
    parser.add_argument("--time-scale", type=positive_int, default=1,
                        help="market seconds per second of block time (120: an hour in 30 s; default 1)")
    parser.add_argument("--negotiate-minutes", type=positive_int, default=50,
                        help="minutes of each hour spent negotiating (default 50; the rest confirms)")
    parser.add_argument("--hours", type=positive_int,
                        help="stop after this many market hours (default: run until stopped)")


def _whole(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


def read_key(value: str, password_file: Path | None) -> bytes:
    """A private key from hex, a file of hex, or a Web3 Secret Storage keystore file."""
    path = Path(value)
    try:
        if path.is_file():
            text = path.read_text().strip()
            if text.startswith("{"):
                json.loads(text)  # a keystore: a readable error if it is not JSON
                password = (password_file.read_text().splitlines()[0] if password_file
                            else getpass.getpass(f"Password for {path}: "))
                return load_key(path, password)
        else:
            text = value.strip()
        key = bytes.fromhex(text[2:] if text.startswith(("0x", "0X")) else text)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise CommandError(f"cannot load the agent's key from {value[:10]}…: {exc}") from None
    if len(key) != 32:
        raise CommandError("a private key is 32 bytes (64 hex digits)")
    return key


def build_agent(args: argparse.Namespace, build):
    """The agent `build(client, reporter)` makes, on a wallet from add_wallet_args' options;
    a bad key, an unreachable node or a bad parameter is a CommandError."""
    # Imported here: web3 is only needed when an agent runs, not for `gridnode --help`.
    from market.agents.client import AgentError, MarketClient, json_reporter, text_reporter

    key = read_key(args.key, args.password_file)
    if args.poll <= 0:
        raise CommandError("--poll must be a positive number of seconds")
    try:
        client = MarketClient(args.rpc, key)
        return build(client, json_reporter() if args.json else text_reporter())
    except (AgentError, ValueError) as exc:
        raise CommandError(str(exc)) from None


def stop_on_signals() -> threading.Event:
    """An event that Ctrl-C or SIGTERM sets: the agent finishes the call it is making, reports
    `stopped` and returns, instead of dying half-way through a transaction."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _start(args: argparse.Namespace, build) -> int:
    from market.agents.schedule import HourlyBatch

    try:
        schedule = HourlyBatch(args.time_scale, args.negotiate_minutes)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    agent = build_agent(args, lambda client, report: build(client, schedule, report))
    agent.run(hours=args.hours, poll=args.poll, stop=stop_on_signals())
    return 0


def run_block_agent(args: argparse.Namespace, build) -> int:
    """Run a block-driven agent (market/agents/auction_schemes.py) until it is done or stopped."""
    agent = build_agent(args, build)
    agent.run_blocks(stop=stop_on_signals(), poll=args.poll)
    return 0


def run_meter(args: argparse.Namespace) -> int:
    from market.agents.meter import MeterAgent
    from market.agents.readings import CsvReadings, SyntheticReadings

    if args.csv and (args.generation_wh or args.consumption_wh or args.battery_wh or args.solar):
        raise CommandError("--csv and the synthetic --generation-wh/--consumption-wh/--battery-wh/--solar "
                           "exclude each other")
    if args.csv:
        try:
            source = CsvReadings(args.csv)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--csv: {exc}") from None
    else:
        source = SyntheticReadings(args.generation_wh, args.consumption_wh, args.battery_wh, args.solar)
    return _start(args, lambda client, schedule, report: MeterAgent(
        client, schedule, report, args.prosumer, source, mint=not args.no_mint))


def run_seller(args: argparse.Namespace) -> int:
    from market.agents.seller import SellerAgent

    return _start(args, lambda client, schedule, report: SellerAgent(
        client, schedule, report, args.price, args.keep_wh, args.min_offer_wh))


def run_buyer(args: argparse.Namespace) -> int:
    from market.agents.buyer import BuyerAgent

    return _start(args, lambda client, schedule, report: BuyerAgent(
        client, schedule, report, args.demand_wh, args.max_price, args.buy_after_minute))


def run_operator(args: argparse.Namespace) -> int:
    from market.agents.operator import OperatorAgent

    return _start(args, lambda client, schedule, report: OperatorAgent(
        client, schedule, report, args.grid_price, args.capacity_wh, args.admit, args.offer_after_minute))


def run_auctioneer(args: argparse.Namespace) -> int:
    from market.agents.auction_schemes import OwnAuction

    return run_block_agent(args, lambda client, report: OwnAuction(
        client, report, args.increment, args.duration, args.start_delay, args.energy_wh))


def run_bidder(args: argparse.Namespace) -> int:
    from market.agents.auction_schemes import Bidder

    chosen = [_checksum(a) for a in args.auction]
    return run_block_agent(args, lambda client, report: Bidder(
        client, report, args.max_total, args.step, (lambda: chosen) if chosen else None))


def _checksum(text: str) -> str:
    from web3 import Web3

    try:
        return Web3.to_checksum_address(text)
    except ValueError:
        raise CommandError(f"--auction: {text!r} is not an address") from None
