"""`gridnode start` and `gridnode init`."""
from __future__ import annotations

import argparse
import asyncio
import errno
import secrets
from pathlib import Path

import uvloop

from cli.errors import CommandError
from consensus.engine import SealOptions, Signer
from genesis.config import Genesis, GenesisError
from genesis.devnet import DEVNET_ACCOUNTS, DEVNET_KEYS, LOCALNET_NAME, dev_accounts, devnet_genesis_document
from node.datadir import DataDir, read_private_key, write_secret
from node.mempool import MempoolLimits
from node.rpc.budget import DEFAULT_BATCH_BUDGET, DEFAULT_CALL_BUDGET
from node.rpc.server import (DEFAULT_APIS, DEFAULT_VHOSTS, KNOWN_APIS, MAX_BATCH_ITEMS, MAX_BATCH_RESPONSE_BYTES,
                             MAX_RESPONSE_BYTES, RpcConfig)
from node.chain import Chain
from node.keystore import keystore_addresses
from node.store import DatabaseLocked, StoreUnwritable
from vm.constants import ELECOIN
from vm.native.registry import REGISTRY, Role
from vm.native.signers import SIGNERS

DEFAULT_DATADIR = "./gridnode-data"
DEVNET_NAME = "gridnode-devnet"
DEFAULT_HASHRATE = 50_000
"""Enough for the devnet's difficulty, little enough to leave the RPC its CPU."""


TXPOOL_FLAGS = (
    (("--txpool-global-slots", "--txpool-size"), "global_slots", int,
     "32 KiB slots for executable transactions of all senders (geth --txpool.globalslots)"),
    (("--txpool-global-queue",), "global_queue", int,
     "32 KiB slots for transactions behind a nonce gap, all senders (geth --txpool.globalqueue)"),
    (("--txpool-account-slots",), "account_slots", int,
     "executable transactions per sender kept ahead of other senders' surplus when the pool is full "
     "(geth --txpool.accountslots)"),
    (("--txpool-account-queue",), "account_queue", int,
     "transactions per sender behind a nonce gap (geth --txpool.accountqueue)"),
    (("--txpool-lifetime",), "lifetime", float,
     "seconds a transaction may wait behind a nonce gap before it is dropped (geth --txpool.lifetime)"),
    (("--txpool-account-limit",), "max_per_sender", int,
     "most transactions per sender, and the furthest nonce ahead of its account nonce"),
)
"""The mempool's limits as flags: (option strings, MempoolLimits field, type, help)."""


def _positive(kind: type):
    """An argparse type: a positive number of `kind`, as geth's txpool sanitises its settings."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def add_parsers(commands: argparse._SubParsersAction) -> None:
    start = commands.add_parser(
        "start", help="run a node (a fresh data dir becomes a single-node devnet)",
        description="Run a gridnode. On an empty data dir with no `gridnode init`, this starts a devnet: "
                    "PoA with a generated signer and the test mnemonic's first 20 accounts funded and registered.")
    start.add_argument("--datadir", default=DEFAULT_DATADIR, help=f"data directory (default {DEFAULT_DATADIR})")
    start.add_argument("--rpc-host", default="127.0.0.1", help="JSON-RPC listen address (default 127.0.0.1)")
    start.add_argument("--rpc-port", type=int, default=8545, help="JSON-RPC port (default 8545; 0 picks a free one)")
    start.add_argument("--http-corsdomain", "--rpc-cors", dest="rpc_cors", default="", metavar="ORIGINS",
                       help="comma-separated browser origins allowed to call the RPC ('*' for any; default none)")
    start.add_argument("--http-vhosts", default=",".join(DEFAULT_VHOSTS), metavar="NAMES",
                       help="comma-separated host names accepted in the Host header ('*' for any; IP addresses "
                            f"are always accepted; default {','.join(DEFAULT_VHOSTS)})")
    start.add_argument("--http-api", default=",".join(DEFAULT_APIS), metavar="NAMESPACES",
                       help=f"JSON-RPC namespaces served, of {','.join(KNOWN_APIS)} (default {','.join(DEFAULT_APIS)})")
    start.add_argument("--rpc-allow-remote-admin", action="store_true",
                       help="serve admin_ (if in --http-api) even when --rpc-host is not a loopback address")
    start.add_argument("--rpc-batch-request-limit", type=int, default=MAX_BATCH_ITEMS, metavar="N",
                       help=f"most calls in one batch (default {MAX_BATCH_ITEMS})")
    start.add_argument("--rpc-batch-response-max-size", type=int, default=MAX_BATCH_RESPONSE_BYTES, metavar="BYTES",
                       help=f"most bytes of a batch's answers (default {MAX_BATCH_RESPONSE_BYTES})")
    start.add_argument("--rpc-response-max-size", type=int, default=MAX_RESPONSE_BYTES, metavar="BYTES",
                       help=f"most bytes of one call's answer (default {MAX_RESPONSE_BYTES})")
    start.add_argument("--rpc-call-budget", type=float, default=DEFAULT_CALL_BUDGET, metavar="SECONDS",
                       help=f"work one call may do (default {DEFAULT_CALL_BUDGET})")
    start.add_argument("--rpc-batch-budget", type=float, default=DEFAULT_BATCH_BUDGET, metavar="SECONDS",
                       help=f"work all calls of one batch may do together (default {DEFAULT_BATCH_BUDGET})")
    start.add_argument("--listen", default="/ip4/0.0.0.0/tcp/30303", metavar="MULTIADDR",
                       help="libp2p listen address (default /ip4/0.0.0.0/tcp/30303; tcp/0 picks a free port)")
    start.add_argument("--bootnode", action="append", default=[], metavar="MULTIADDR",
                       help="peer to dial at start, /ip4/…/tcp/…/p2p/<peer id> (repeatable)")
    start.add_argument("--no-p2p", action="store_true", help="run without networking (a lone devnet)")
    start.add_argument("--signer-key", type=Path, metavar="FILE",
                       help="hex private key file this node seals blocks with (default DATADIR/signer.key if present)")
    start.add_argument("--engine", choices=["poa", "pow", "poeg", "posoc"], default="poa",
                       help="consensus engine of a new devnet (default poa; ignored once a data dir is initialised)")
    start.add_argument("--hashrate", type=int, default=DEFAULT_HASHRATE, metavar="H",
                       help=f"PoW: hashes per second this node may spend mining (default {DEFAULT_HASHRATE})")
    start.add_argument("--no-bid-ordering", dest="bid_ordering", action="store_false",
                       help="fill blocks in plain pool order instead of putting each auction's bids in by "
                            "ascending total (a producing policy, not a consensus rule; default on)")
    start.add_argument("--harness", action="store_true",
                       help="for `gridnode testnet` only: serve harness_ (clock skew, byzantine modes); "
                            "refused unless the chain is a localnet's test chain")
    for flags, field, kind, text in TXPOOL_FLAGS:
        default = getattr(MempoolLimits, field)
        start.add_argument(*flags, dest=f"txpool_{field}", type=_positive(kind), default=default,
                           metavar="SECONDS" if kind is float else "N", help=f"{text} (default {default:g})")
    start.set_defaults(func=run_start)

    init = commands.add_parser("init", help="initialise a data dir from a genesis file",
                               description="Create a data dir's chain (block 0) from a genesis JSON file.")
    init.add_argument("--genesis", required=True, type=Path, help="genesis JSON file (see genesis/README.md)")
    init.add_argument("--datadir", default=DEFAULT_DATADIR, help=f"data directory (default {DEFAULT_DATADIR})")
    init.set_defaults(func=run_init)


def run_init(args: argparse.Namespace) -> int:
    _init_from_genesis(DataDir(Path(args.datadir)), Path(args.genesis))
    return 0


def _init_from_genesis(datadir: DataDir, genesis_path: Path) -> None:
    try:
        genesis = Genesis.load(genesis_path)
    except GenesisError as exc:
        raise CommandError(str(exc)) from None
    datadir.create()
    store, chain = _open(datadir, genesis)
    datadir.genesis_file.write_text(genesis.to_json())
    print(f"initialised {datadir.root} with genesis 0x{chain.genesis_block_hash().hex()} "
          f"(chain id {genesis.chain_id}, engine {genesis.engine})")
    store.close()


def _open(datadir: DataDir, genesis: Genesis | None):
    from node.service import open_chain  # the node's network stack loads only for commands that open a chain

    try:
        return open_chain(datadir, genesis)
    except (GenesisError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    except (DatabaseLocked, StoreUnwritable) as exc:
        raise CommandError(str(exc)) from None


def _init_devnet(datadir: DataDir, engine: str) -> None:
    """First start on an uninitialised data dir: a devnet whose one signer is this
    data dir's signer key (generated unless `gridnode keys` already made one)."""
    datadir.create()
    if datadir.signer_key_file.exists():
        key = read_private_key(datadir.signer_key_file)
    else:
        key = secrets.token_bytes(32)
        write_secret(datadir.signer_key_file, key.hex() + "\n")
    genesis = Genesis.from_json(devnet_genesis_document(Signer(key).address, engine))
    store, _chain = _open(datadir, genesis)
    datadir.genesis_file.write_text(genesis.to_json())
    store.close()


def _signer(args: argparse.Namespace, datadir: DataDir) -> Signer | None:
    path = args.signer_key or (datadir.signer_key_file if datadir.signer_key_file.exists() else None)
    if path is None:
        return None
    try:
        return Signer(read_private_key(path))
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read signer key: {exc}") from None


def _print_devnet_accounts(chain: Chain) -> None:
    """Accounts and their keys, then the market contracts, as Anvil prints its accounts."""
    print("Accounts\n========\n")
    print("WARNING: These accounts, and their private keys, are publicly known.")
    print("Any funds sent to them on any public network WILL BE LOST.\n")
    state = chain.state()
    fiat = chain.contracts.by_name("FiatToken")
    oracles = chain.contracts.by_name("Meters")
    for index, account in enumerate(dev_accounts(DEVNET_KEYS)):
        role = REGISTRY.role_at(state, account.address)
        if role is Role.NONE:
            continue
        label = "admin, operator" if index == 0 else role.name.lower().replace("_", " ")
        if oracles is not None and role is Role.METER_ORACLE:
            label += f" of account #{index - DEVNET_ACCOUNTS + 1}"
        holdings = f"{state.get_balance(account.address) // ELECOIN} ELC"
        if fiat is not None:
            holdings += f", {_units(fiat.balance_at(state, fiat.address, account.address), fiat.params['decimals'])} " \
                        f"{fiat.params['symbol']}"
        print(f"Account #{index}: {account.address.to_checksum()} ({holdings}, {label})")
        print(f"Private Key: 0x{account.private_key.hex()}\n")
    market = [c for c in chain.contracts.placed() if c.address not in (REGISTRY.address, SIGNERS.address)]
    print("Contracts\n=========\n")
    for contract in chain.contracts.placed():
        print(f"{contract.name:<16} {contract.address.to_checksum()}")
    if market:
        print("\nABIs: grid_contracts over JSON-RPC, or `gridnode market contracts`.")
    print()


def _units(amount: int, decimals: int) -> str:
    whole, part = divmod(amount, 10**decimals)
    return f"{whole}.{part:0{decimals}d}" if decimals else str(whole)


def _rpc_config(args: argparse.Namespace) -> RpcConfig:
    def names(text: str) -> tuple[str, ...]:
        return tuple(name.strip() for name in text.split(",") if name.strip())

    apis = names(args.http_api) + (("harness",) if args.harness else ())
    config = RpcConfig(vhosts=(*names(args.http_vhosts), args.rpc_host),
                       cors_origins=names(args.rpc_cors), apis=apis,
                       allow_remote_admin=args.rpc_allow_remote_admin, batch_items=args.rpc_batch_request_limit,
                       batch_response_bytes=args.rpc_batch_response_max_size,
                       response_bytes=args.rpc_response_max_size, call_budget=args.rpc_call_budget,
                       batch_budget=args.rpc_batch_budget)
    try:
        config.check(args.rpc_host)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return config


def run_start(args: argparse.Namespace) -> int:
    from node.p2p.service import NetworkError
    from node.service import Node, NodeConfig

    rpc = _rpc_config(args)  # a bad flag fails before anything is written to the data dir
    datadir = DataDir(Path(args.datadir))
    if not datadir.is_initialised():
        if datadir.genesis_file.exists():  # chaindata removed to resync (geth's `removedb`): keep its chain
            _init_from_genesis(datadir, datadir.genesis_file)
        else:
            _init_devnet(datadir, args.engine)
    signer = _signer(args, datadir)
    store, chain = _open(datadir, None)
    try:
        if signer and not chain.engine.authorized(chain, chain.head, signer.address):
            raise CommandError(f"signer {signer.address.to_checksum()} may not produce blocks on this chain")
        if args.harness and chain.genesis.name != LOCALNET_NAME:
            raise CommandError(f"--harness is for test chains only (a genesis named {LOCALNET_NAME!r}, "
                               f"made by gridnode localnet); this chain is {chain.genesis.name!r}")
        config = NodeConfig(datadir=datadir, rpc_host=args.rpc_host, rpc_port=args.rpc_port, signer=signer,
                            rpc=rpc,
                            mempool=MempoolLimits(**{field: getattr(args, f"txpool_{field}")
                                                     for _, field, _, _ in TXPOOL_FLAGS}),
                            accounts=tuple(keystore_addresses(datadir.keystore)),
                            listen=() if args.no_p2p else (args.listen,), bootnodes=tuple(args.bootnode),
                            seal=SealOptions(hashrate=args.hashrate), bid_ordering=args.bid_ordering,
                            harness=args.harness)
        node = Node(config, store, chain)
        devnet = chain.genesis.name == DEVNET_NAME

        def announce(running: Node) -> None:
            print(f"Started JSON-RPC server at {running.rpc_url}/ (chain id {chain.chain_id}, "
                  f"head #{chain.head.number})", flush=True)
            if running.network is not None:
                print(f"Node id {running.network.peer_id}, p2p at {' '.join(running.network.listen_addrs())}",
                      flush=True)
            print(flush=True)
            if devnet:
                _print_devnet_accounts(chain)
            print(f"Data dir: {datadir.root.resolve()}   Ctrl-C to stop.", flush=True)

        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:  # libuv: less per request
                runner.run(node.run(on_ready=announce))
        except StoreUnwritable as exc:
            raise CommandError(f"the node stopped: {exc}. Free space or make the data dir writable and start it "
                               f"again: it resumes from block #{chain.head.number}, its last commit") from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"RPC address {args.rpc_host}:{args.rpc_port} is already in use") from None
            raise
        except NetworkError as exc:
            raise CommandError(str(exc)) from None
    finally:
        store.close()
    return 0

