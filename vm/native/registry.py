"""The registry: who may use the chain, in what role, and which nodes may peer (DESIGN §4.5).

Genesis admins register and revoke accounts; only registered accounts may send
transactions, and a role gates what each may call in the market contracts.
Admins also admit node keys (libp2p peer ids) to the network. Storage: role and
name per account, the admin set and the admitted node keys, all under this
contract's address so they are part of the state root."""
from __future__ import annotations

from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import REGISTRY_ADDRESS, Role
from vm.state import State
from vm.types import Address


MAX_NAME_BYTES = 64
MAX_PEER_ID_BYTES = 128


class Registry(NativeContract):
    name = "Registry"
    default_address = REGISTRY_ADDRESS
    abi_file = "registry.abi.json"

    # -- reads without gas, for the vm's permission check and for genesis --
    def role_at(self, state: State, account: Address) -> Role:
        """Gas-free, for the vm's permission check and the node's intake."""
        value = state.get_storage(self.address, self.slot(b"role", account))
        return Role(value[0]) if value else Role.NONE

    def is_admin(self, state: State, account: Address) -> bool:
        return bool(state.get_storage(self.address, self.slot(b"admin", account)))

    def admin_count(self, state: State) -> int:
        return int.from_bytes(state.get_storage(self.address, self.slot(b"adminCount")), "big")

    def is_node_admitted(self, state: State, peer_id: str) -> bool:
        return bool(state.get_storage(self.address, self.slot(b"node", peer_id.encode())))

    def write_members(self, state: State, admins: list[Address], members: list[tuple[Address, Role, str]],
                      nodes: list[str] = ()) -> None:
        """The genesis' members, admins and admitted nodes."""
        for peer_id in nodes:
            state.set_storage(self.address, self.slot(b"node", peer_id.encode()), b"\x01")
        for account, role, name in members:
            state.set_storage(self.address, self.slot(b"role", account), bytes([role]))
            state.set_storage(self.address, self.slot(b"name", account), name.encode())
        for admin in admins:
            state.set_storage(self.address, self.slot(b"admin", admin), b"\x01")
        state.set_storage(self.address, self.slot(b"adminCount"), len(admins).to_bytes(8, "big"))

    # -- ABI functions ------------------------------------------------------
    @abi_function("register")
    def _register(self, ctx: CallContext, account: str, role: int, name: str) -> None:
        self._require_admin(ctx)
        account = Address.from_hex(account)
        if not Role.NONE < role <= max(Role):
            raise Revert(f"registry: unknown role {role}")
        if len(name.encode()) > MAX_NAME_BYTES:
            raise Revert(f"registry: name longer than {MAX_NAME_BYTES} bytes")
        if self.load(ctx, self.slot(b"role", account)):
            raise Revert("registry: account already registered")
        self.store(ctx, self.slot(b"role", account), bytes([role]))
        self.store(ctx, self.slot(b"name", account), name.encode())
        self.emit(ctx, "Registered", account.to_checksum(), role, name, ctx.caller.to_checksum())

    @abi_function("revoke")
    def _revoke(self, ctx: CallContext, account: str) -> None:
        self._require_admin(ctx)
        account = Address.from_hex(account)
        if not self.load(ctx, self.slot(b"role", account)):
            raise Revert("registry: account not registered")
        if self.load(ctx, self.slot(b"admin", account)):
            raise Revert("registry: an admin cannot be revoked")
        self.store(ctx, self.slot(b"role", account), b"")
        self.store(ctx, self.slot(b"name", account), b"")
        self.emit(ctx, "Revoked", account.to_checksum(), ctx.caller.to_checksum())

    @abi_function("roleOf")
    def _role_of(self, ctx: CallContext, account: str) -> int:
        value = self.load(ctx, self.slot(b"role", Address.from_hex(account)))
        return value[0] if value else 0

    @abi_function("isRegistered")
    def _is_registered(self, ctx: CallContext, account: str) -> bool:
        return bool(self.load(ctx, self.slot(b"role", Address.from_hex(account))))

    @abi_function("nameOf")
    def _name_of(self, ctx: CallContext, account: str) -> str:
        return self.load(ctx, self.slot(b"name", Address.from_hex(account))).decode()

    @abi_function("isAdmin")
    def _is_admin(self, ctx: CallContext, account: str) -> bool:
        return bool(self.load(ctx, self.slot(b"admin", Address.from_hex(account))))

    @abi_function("admitNode")
    def _admit_node(self, ctx: CallContext, peer_id: str) -> None:
        self._require_admin(ctx)
        if not 0 < len(peer_id.encode()) <= MAX_PEER_ID_BYTES:
            raise Revert("registry: malformed peer id")
        if self.load(ctx, self.slot(b"node", peer_id.encode())):
            raise Revert("registry: node already admitted")
        self.store(ctx, self.slot(b"node", peer_id.encode()), b"\x01")
        self.emit(ctx, "NodeAdmitted", peer_id, ctx.caller.to_checksum())

    @abi_function("removeNode")
    def _remove_node(self, ctx: CallContext, peer_id: str) -> None:
        self._require_admin(ctx)
        if not self.load(ctx, self.slot(b"node", peer_id.encode())):
            raise Revert("registry: node not admitted")
        self.store(ctx, self.slot(b"node", peer_id.encode()), b"")
        self.emit(ctx, "NodeRemoved", peer_id, ctx.caller.to_checksum())

    @abi_function("isNodeAdmitted")
    def _is_node_admitted(self, ctx: CallContext, peer_id: str) -> bool:
        return bool(self.load(ctx, self.slot(b"node", peer_id.encode())))

    def _require_admin(self, ctx: CallContext) -> None:
        if not self.load(ctx, self.slot(b"admin", ctx.caller)):
            raise Revert("registry: caller is not an admin")


REGISTRY = Registry()
