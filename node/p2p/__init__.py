"""The libp2p network layer: peering, gossip and sync for gridnode.

The node uses `P2PService` (service.py) and implements `ChainPort` (port.py);
nothing else here is its business. Inside, one module per idea:

    identity.py   the node key in DATADIR/node.key and the peer id
    config.py     P2PConfig, bootnode / static peer parsing
    bridge.py     the one crossing between the node's asyncio loop and trio
    host.py       the libp2p host: TCP + Noise + Yamux only
    network.py    everything running on the trio thread, started in order
    peers.py      connected and counted peers, penalties, bans
    dialer.py     bootnodes, static and added peers, redial with backoff
    handshake.py  status exchange and admission on connect, periodic refresh
    gossip.py     gossipsub topics, validators, transaction batching
    sync.py       block sync over request/response streams
    wire.py       protocol ids, topics, encodings, framing

Importing this package does not import libp2p (the port's users need not pay
for it); import `node.p2p.service` for the service."""
