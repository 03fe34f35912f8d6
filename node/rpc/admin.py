"""admin_ methods: look at and steer this node's peers (go-ethereum's names)."""
from __future__ import annotations

from node.rpc.errors import SERVER_ERROR, RpcError, invalid_params


class AdminApi:
    def __init__(self, network, evidence) -> None:
        self.network = network
        """The P2PService, or None when the node runs without networking."""
        self.evidence = evidence
        """The node's EvidenceReporter: what it observed of producers."""

    def _require_network(self):
        if self.network is None:
            raise RpcError(SERVER_ERROR, "networking is disabled on this node")
        return self.network

    def admin_peers(self) -> list[dict]:
        return self._require_network().peers()

    def admin_nodeInfo(self) -> dict:
        network = self._require_network()
        return {"id": network.peer_id, "listenAddrs": network.listen_addrs()}

    def admin_addPeer(self, multiaddr) -> bool:
        if not isinstance(multiaddr, str) or "/p2p/" not in multiaddr:
            raise invalid_params("a full multiaddr ending in /p2p/<peer id> expected")
        return self._require_network().add_peer(multiaddr)

    def admin_removePeer(self, peer) -> bool:
        """Disconnect a peer (by peer id or multiaddr) and stop redialling it until admin_addPeer."""
        if not isinstance(peer, str) or not peer:
            raise invalid_params("a peer id or multiaddr expected")
        return self._require_network().remove_peer(peer.rsplit("/p2p/", 1)[-1])

    def admin_misbehaviour(self) -> dict:
        """What this node saw peers and producers do wrong: the latest penalties it gave (and
        why), the equivocations it observed (both headers, RLP) and the turns producers missed."""
        return {"penalties": self.network.penalties() if self.network else [],
                "equivocations": list(self.evidence.equivocations),
                "missedTurns": dict(sorted(self.evidence.missed_turns.items()))}
