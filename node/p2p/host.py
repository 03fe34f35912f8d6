"""The libp2p host: TCP, Noise, Yamux, and nothing else.

py-libp2p's `new_host` offers TLS, SECIO and *plaintext* security alongside Noise
when no security options are passed, and mplex beside yamux; a node that accepted
plaintext could be talked into an unauthenticated session. We build the swarm with
exactly one choice per layer so every connection is Noise-encrypted and
authenticated by the peer's node key."""
from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Sequence

import multiaddr
from libp2p import new_swarm
from libp2p.crypto.x25519 import create_new_key_pair as create_noise_key_pair
from libp2p.custom_types import TProtocol
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.tcp.tcp import TCP
from libp2p.utils.address_validation import expand_wildcard_address

from node.p2p.config import P2PConfig
from node.p2p.identity import NodeIdentity

log = logging.getLogger("gridnode.p2p")


class ListenError(OSError):
    """An address we were asked to listen on could not be bound."""


def build_host(identity: NodeIdentity, config: P2PConfig) -> BasicHost:
    key_pair = identity.key_pair
    security = {NOISE_PROTOCOL_ID: NoiseTransport(key_pair, noise_privkey=create_noise_key_pair().private_key)}
    muxers = {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
    connections = ConnectionConfig(
        max_connections=config.max_peers,
        min_connections=0,
        low_watermark=0,
        high_watermark=config.max_peers,
        max_connections_per_peer=2,
        dial_timeout=config.dial_timeout,
        outbound_stream_protocol_negotiation_timeout=config.request_timeout,
        inbound_stream_protocol_negotiation_timeout=config.request_timeout,
    )
    swarm = new_swarm(
        key_pair=key_pair,
        sec_opt=security,
        muxer_opt=muxers,
        transports=[TCP()],
        # Our dialer owns retries and backoff; the swarm's own retry would multiply them.
        retry_config=RetryConfig(max_retries=0),
        connection_config=connections,
    )
    # Observed-address discovery would advertise whatever a peer claims to see;
    # a permissioned node advertises what it listens on.
    return BasicHost(network=swarm, negotiate_timeout=max(1, round(config.request_timeout)),
                     disable_identify_address_discovery=True)


async def listen(host: BasicHost, addresses: Sequence[multiaddr.Multiaddr]) -> None:
    """Bind every address or raise ListenError naming the first that failed.

    Two library behaviours make this more than `host.run(listen_addrs)`:
    `Swarm.listen` reports failure only as a False return with a debug log (and
    `BasicHost.run` ignores even that); and py-libp2p's TCP listener sets
    SO_REUSEPORT (transport/tcp/tcp.py, `_set_reuse_flags`, for hole punching), so
    a second node on a taken port would *succeed* and silently share the port's
    connections with the first. So each fixed port is first probed with a plain
    socket, which the kernel refuses if anyone listens there."""
    for address in addresses:
        if int(address.value_for_protocol("tcp")) != 0:
            reason = _bind_failure(address)
            if reason is not None:
                raise ListenError(f"cannot listen on {address}: {reason}")
    network = host.get_network()
    await network.listen(*addresses)
    for address in addresses:
        if str(address) not in network.listeners:
            reason = _bind_failure(address) or "the libp2p TCP transport could not open it"
            raise ListenError(f"cannot listen on {address}: {reason}")


def advertised_addrs(host: BasicHost) -> list[str]:
    """Full multiaddrs (`…/p2p/<peer id>`) of what we listen on; a wildcard listen
    address is expanded into this machine's interface addresses."""
    suffix = f"/p2p/{host.get_id()}"
    addresses: list[str] = []
    for bound in host.get_transport_addrs():
        host_part = bound.value_for_protocol("ip4") if "ip4" in _protocol_names(bound) else bound.value_for_protocol("ip6")
        concrete = expand_wildcard_address(bound) if host_part in ("0.0.0.0", "::") else [bound]
        for address in concrete:
            text = f"{address}{suffix}"
            if text not in addresses:
                addresses.append(text)
    return addresses


def _protocol_names(address: multiaddr.Multiaddr) -> list[str]:
    return [protocol.name for protocol in address.protocols()]


def _bind_failure(address: multiaddr.Multiaddr) -> str | None:
    """Why the OS refuses this address (probing with a plain socket), or None."""
    family = socket.AF_INET if "ip4" in _protocol_names(address) else socket.AF_INET6
    ip = address.value_for_protocol("ip4" if family == socket.AF_INET else "ip6")
    port = int(address.value_for_protocol("tcp"))
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT leftovers of a restart
        probe.bind((ip, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"address already in use (is another node running on port {port}?)"
        return exc.strerror or str(exc)
    finally:
        probe.close()
    return None
