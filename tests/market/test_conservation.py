"""Conservation as a property: random sequences of market calls, run in process on the
Sandbox (a devnet-like chain with every market contract), against a plain Python model.

After every call of the tokens, Meters and the exchange, the chain must agree with the
model: the call succeeds, or reverts with the reason the model predicts (a revert inside
FiatToken.transferFrom reaches the exchange's caller with the token's reason), and every
balance and allowance is what the model says. Offers calls (escrow, payment on metered
delivery, refund, cancel) may succeed or fail; they must not create or destroy a token,
and a failed one must not move any. An allocation costs its Wh at the offer's price per kWh,
rounded up to the cent (ceil(Wh · price / 1000)), and escrow, payment and refund move
exactly that stored cost. Always:
- each token's totalSupply changes only by mint, mintWatts and burn, and the sum of all
  balances equals totalSupply;
- the elecoins of all accounts and contracts together never change (the Sandbox charges no
  fees and PoA mints nothing; buyToken only moves a reserve to a buyer);
- no balance or allowance is ever negative, or larger than the supply.

CI runs a small budget; `GRIDNODE_FUZZ_EXAMPLES=2000 python -m pytest
tests/market/test_conservation.py` runs a long one."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from market.contracts.addresses import ENERGY_TOKEN, ETSC, EXCHANGE, FIAT_TOKEN, METERS, OFFERS
from market.contracts.erc20 import ERC20Token
from market.contracts.params import UINT256_MAX
from market.contracts.exchange import cost_of
from market.contracts.meters import Meters
from market_sandbox import ACCOUNTS, PRODUCER, Sandbox
from vm.native.roles import REGISTRY_ADDRESS, SIGNERS_ADDRESS
from vm.types import ZERO_ADDRESS, Address

EXAMPLES = int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "200"))
ACTORS = [Address(a.address) for a in ACCOUNTS]
"""#0 admin, #1..#19 prosumers, #20..#38 the prosumers' meter oracles, #39 the edge server."""
CONTRACTS = [REGISTRY_ADDRESS, SIGNERS_ADDRESS, FIAT_TOKEN, ENERGY_TOKEN, METERS, EXCHANGE, ETSC, OFFERS]
HOLDERS = ACTORS + CONTRACTS
"""Every address a token can reach in these runs (recipients are drawn from it)."""
ADMIN, SERVER = ACTORS[0], ACTORS[39]
TOKENS = {FIAT_TOKEN: "fiat", ENERGY_TOKEN: "energy"}
SPENDERS = ACTORS + [EXCHANGE, OFFERS]

CAST = [0, 1, 2, 3, 4, 39]
"""Half the draws come from a small cast (admin, four prosumers, the edge server), so the
same accounts meet again: an approval is spent, a reading is minted, an offer is bought."""
actors = st.sampled_from(CAST) | st.sampled_from(range(len(ACTORS)))
prosumers = st.integers(1, 4)
spenders = (st.sampled_from([*CAST, SPENDERS.index(EXCHANGE), SPENDERS.index(OFFERS)])
            | st.sampled_from(range(len(SPENDERS))))
recipients = st.sampled_from(CAST) | st.sampled_from(range(len(HOLDERS))) | st.just(-1)  # -1: the zero address
tokens = st.sampled_from(sorted(TOKENS))
amounts = st.integers(0, 5_000) | st.sampled_from(["all", "all+1", "max"])
"""A plain amount, or one relative to what the model says is there."""


def resolve(amount, available: int) -> int:
    return {"all": available, "all+1": available + 1, "max": UINT256_MAX}.get(amount, amount)


def holder(index: int) -> Address:
    return ZERO_ADDRESS if index < 0 else HOLDERS[index]


def hexa(address: Address) -> str:
    return address.to_checksum()


class MarketModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.box = Sandbox()
        state = self.box.state
        self.balances = {t: {h: ERC20Token.balance_at(state, t, h) for h in HOLDERS} for t in TOKENS}
        self.supply = {t: ERC20Token.total_supply_at(state, t) for t in TOKENS}
        self.allowances: dict[tuple[Address, Address, Address], int] = {}
        self.issuers = {t: {a for a in ACTORS if self._chain_call(a, t, "isIssuer(address)", (hexa(a),), "bool")}
                        for t in TOKENS}
        self.oracles = {p: Meters.oracle_at(state, METERS, p) for p in ACTORS}
        self.generation = {p: self._chain_call(ADMIN, METERS, "totalGeneration(address)", (hexa(p),), "uint256")
                           for p in ACTORS}
        self.minted = {p: self._chain_call(ADMIN, ENERGY_TOKEN, "mintedWatts(address)", (hexa(p),), "uint256")
                       for p in ACTORS}
        self.posted: set[tuple[Address, int]] = set()
        self.price = self._chain_call(ADMIN, EXCHANGE, "priceOf(address)", (hexa(SERVER),), "uint256")
        self.reserve = self._chain_call(ADMIN, EXCHANGE, "reserveOf(address)", (hexa(SERVER),), "uint256")
        self.elecoins = self._elecoin_total()

    # -- helpers ------------------------------------------------------------------
    def _chain_call(self, sender, to, signature, args, kind):
        (value,) = self.box.call(sender, to, signature, args, returns=(kind,))
        return value

    def _elecoin_total(self) -> int:
        return sum(self.box.balance(a) for a in HOLDERS + [PRODUCER])

    def _expect(self, sender: Address, to: Address, signature: str, args: tuple, reason: str | None):
        """Send the call as a transaction; it must succeed iff `reason` is None, else revert with it."""
        result = self.box.transact(sender, to, signature, args)
        event(f"{signature.split('(')[0]}: {result.reason or 'ok'}")  # --hypothesis-show-statistics
        if reason is None:
            assert result.ok, f"{signature} {args} reverted: {result.reason}"
        else:
            assert not result.ok and result.reason == reason, \
                f"{signature} {args}: expected revert {reason!r}, got ok={result.ok} {result.reason!r}"
        return result

    def _balance(self, token: Address, account: Address) -> int:
        return self.balances[token].get(account, 0)

    def _move(self, token: Address, source: Address, to: Address, amount: int) -> None:
        self.balances[token][source] -= amount
        self.balances[token][to] = self._balance(token, to) + amount

    # -- ERC-20 -------------------------------------------------------------------
    @rule(token=tokens, sender=actors, to=recipients, amount=amounts)
    def transfer(self, token, sender, to, amount):
        source, target = ACTORS[sender], holder(to)
        amount = resolve(amount, self._balance(token, source))
        prefix = TOKENS[token]
        reason = (f"{prefix}: transfer to the zero address" if target == ZERO_ADDRESS else
                  f"{prefix}: transfer amount exceeds balance" if amount > self._balance(token, source) else None)
        self._expect(source, token, "transfer(address,uint256)", (hexa(target), amount), reason)
        if reason is None:
            self._move(token, source, target, amount)

    @rule(token=tokens, owner=actors, spender=spenders, amount=amounts)
    def approve(self, token, owner, spender, amount):
        amount = resolve(amount, self._balance(token, ACTORS[owner]))
        self._expect(ACTORS[owner], token, "approve(address,uint256)", (hexa(SPENDERS[spender]), amount), None)
        self.allowances[token, ACTORS[owner], SPENDERS[spender]] = amount

    @rule(token=tokens, spender=actors, owner=actors, to=recipients, amount=amounts)
    def transfer_from(self, token, spender, owner, to, amount):
        source, caller, target = ACTORS[owner], ACTORS[spender], holder(to)
        allowed = self.allowances.get((token, source, caller), 0)
        amount = resolve(amount, min(allowed, self._balance(token, source)))
        prefix = TOKENS[token]
        reason = (f"{prefix}: insufficient allowance" if amount > allowed else
                  f"{prefix}: transfer to the zero address" if target == ZERO_ADDRESS else
                  f"{prefix}: transfer amount exceeds balance" if amount > self._balance(token, source) else None)
        self._expect(caller, token, "transferFrom(address,address,uint256)",
                     (hexa(source), hexa(target), amount), reason)
        if reason is None:
            if allowed != UINT256_MAX:
                self.allowances[token, source, caller] = allowed - amount
            self._move(token, source, target, amount)

    # -- issuers, mint and burn ------------------------------------------------------
    @rule(token=tokens, sender=st.sampled_from([0, 0, 1]), account=actors)
    def add_issuer(self, token, sender, account):
        prefix, issuer = TOKENS[token], ACTORS[account]
        reason = (f"{prefix}: caller is not an admin" if ACTORS[sender] != ADMIN else
                  f"{prefix}: account is already an issuer" if issuer in self.issuers[token] else None)
        self._expect(ACTORS[sender], token, "addIssuer(address)", (hexa(issuer),), reason)
        if reason is None:
            self.issuers[token].add(issuer)

    @rule(token=tokens, account=actors)
    def remove_issuer(self, token, account):
        prefix, issuer = TOKENS[token], ACTORS[account]
        reason = None if issuer in self.issuers[token] else f"{prefix}: account is not an issuer"
        self._expect(ADMIN, token, "removeIssuer(address)", (hexa(issuer),), reason)
        self.issuers[token].discard(issuer)

    @rule(token=tokens, sender=actors, to=recipients, amount=st.integers(0, 10_000) | st.just("max"))
    def mint(self, token, sender, to, amount):
        prefix, target = TOKENS[token], holder(to)
        amount = resolve(amount, 0)
        reason = (f"{prefix}: caller is not an issuer" if ACTORS[sender] not in self.issuers[token] else
                  f"{prefix}: mint to the zero address" if target == ZERO_ADDRESS else
                  f"{prefix}: total supply would exceed 2**256-1" if amount > UINT256_MAX - self.supply[token]
                  else None)
        self._expect(ACTORS[sender], token, "mint(address,uint256)", (hexa(target), amount), reason)
        if reason is None:
            self.supply[token] += amount
            self.balances[token][target] = self._balance(token, target) + amount

    @rule(token=tokens, sender=actors, amount=amounts)
    def burn(self, token, sender, amount):
        source = ACTORS[sender]
        amount = resolve(amount, self._balance(token, source))
        reason = f"{TOKENS[token]}: burn amount exceeds balance" if amount > self._balance(token, source) else None
        self._expect(source, token, "burn(uint256)", (amount,), reason)
        if reason is None:
            self.supply[token] -= amount
            self.balances[token][source] -= amount

    # -- meters and mintWatts -------------------------------------------------------------
    @rule(prosumer=prosumers, honest=st.booleans(), back=st.integers(-1, 3),
          generation=st.integers(0, 3_000), consumption=st.integers(0, 3_000), battery=st.integers(0, 10_000))
    def post_reading(self, prosumer, honest, back, generation, consumption, battery):
        account = ACTORS[prosumer]
        oracle = self.oracles[account]
        caller = oracle if honest and oracle is not None else ACTORS[(prosumer + 7) % 39]
        current = self._chain_call(ADMIN, METERS, "currentSlot()", (), "uint64")
        slot = max(current - back, 0)
        reason = ("meters: no meter registered for the prosumer" if oracle is None else
                  "meters: caller is not the prosumer's meter oracle" if caller != oracle else
                  "meters: slot is in the future" if slot > current else
                  "meters: reading already posted for this slot" if (account, slot) in self.posted else None)
        # the transaction runs in the next block, whose timestamp may start a new slot:
        # a reading for the slot after `current` is then no longer in the future
        result = self.box.transact(caller, METERS, "postReading(address,uint64,uint256,uint256,uint256)",
                                   (hexa(account), slot, generation, consumption, battery))
        event(f"postReading: {result.reason or 'ok'}")
        if reason == "meters: slot is in the future" and result.ok:
            reason = None
        assert result.ok == (reason is None) and (result.ok or result.reason == reason), \
            f"postReading: expected {reason!r}, got ok={result.ok} {result.reason!r}"
        if reason is None:
            self.posted.add((account, slot))
            self.generation[account] += generation
            assert Meters.reading_at(self.box.state, METERS, account, slot).generation_wh == generation

    @rule(prosumer=prosumers, honest=st.booleans(), wh=st.integers(0, 2_000) | st.sampled_from(["all", "all+1"]))
    def mint_watts(self, prosumer, honest, wh):
        account = ACTORS[prosumer]
        oracle = self.oracles[account]
        caller = oracle if honest and oracle is not None else account
        available = self.generation[account] - self.minted[account]
        wh = resolve(wh, available)
        reason = ("energy: no meter oracle registered for the prosumer" if oracle is None else
                  "energy: caller is not the prosumer's meter oracle" if caller != oracle else
                  "energy: zero amount" if wh == 0 else
                  "energy: amount exceeds the reported generation not yet minted" if wh > available else None)
        self._expect(caller, ENERGY_TOKEN, "mintWatts(address,uint256)", (hexa(account), wh), reason)
        if reason is None:
            self.minted[account] += wh
            self.supply[ENERGY_TOKEN] += wh
            self.balances[ENERGY_TOKEN][account] = self._balance(ENERGY_TOKEN, account) + wh

    @rule(seconds=st.integers(1, 3_600))
    def time_passes(self, seconds):
        self.box.mine(seconds)

    @rule(prosumer=prosumers, generation=st.integers(1, 3_000), share=st.integers(1, 100),
          price=st.integers(1, 50), lifetime=st.integers(1, 7_200))  # 0.01 .. 0.50 GUSD/kWh
    def metered_seller(self, prosumer, generation, share, price, lifetime):
        """Paper 002's seller in one step: the meter reports, the oracle mints the watts, the
        prosumer approves Offers and offers a share of them."""
        oracle = self.oracles[ACTORS[prosumer]]
        current = self._chain_call(ADMIN, METERS, "currentSlot()", (), "uint64")
        if (ACTORS[prosumer], current) in self.posted:
            self.time_passes(900)
        self.post_reading(prosumer, True, 0, generation, 0, 0)
        self.mint_watts(prosumer, True, "all")
        assert self.oracles[ACTORS[prosumer]] == oracle
        amount = max(self._balance(ENERGY_TOKEN, ACTORS[prosumer]) * share // 100, 1)
        self.make_offer(prosumer, amount, price, lifetime, True)

    # -- the elecoin exchange: buyToken pays fiat through FiatToken.transferFrom ------------------
    @rule(buyer=prosumers, elecoins=st.integers(0, 3 * 10**18) | st.just("reserve+1"), approve_first=st.booleans())
    def buy_elecoins(self, buyer, elecoins, approve_first):
        account = ACTORS[buyer]
        elecoins = self.reserve + 1 if elecoins == "reserve+1" else elecoins
        paid = cost_of(self.price, elecoins)
        if approve_first:  # what a wallet does: approve the quoted amount, then buy
            self.approve(FIAT_TOKEN, buyer, SPENDERS.index(EXCHANGE), paid)
        allowed = self.allowances.get((FIAT_TOKEN, account, EXCHANGE), 0)
        reason = ("exchange: zero amount" if elecoins == 0 else
                  "exchange: purchase exceeds the server's reserve" if elecoins > self.reserve else
                  "fiat: insufficient allowance" if paid > allowed else
                  "fiat: transfer amount exceeds balance" if paid > self._balance(FIAT_TOKEN, account) else None)
        before = self.box.balance(account)
        self._expect(account, EXCHANGE, "buyToken(address,uint256)", (hexa(SERVER), elecoins), reason)
        if reason is None:
            self.reserve -= elecoins
            if allowed != UINT256_MAX:
                self.allowances[FIAT_TOKEN, account, EXCHANGE] = allowed - paid
            self._move(FIAT_TOKEN, account, SERVER, paid)
            assert self.box.balance(account) == before + elecoins
        else:
            assert self.box.balance(account) == before

    # -- paper 002's offers: any outcome, but tokens only move, never appear --------------------------
    @rule(seller=prosumers, amount=st.integers(0, 2_000), price=st.integers(0, 50),
          lifetime=st.integers(-10, 7_200), approve_first=st.booleans())
    def make_offer(self, seller, amount, price, lifetime, approve_first):
        if approve_first:
            self.approve(ENERGY_TOKEN, seller, SPENDERS.index(OFFERS), amount)
        self._offers_call(ACTORS[seller], "makeOffer(uint256,uint256,uint64)",
                          (amount, price, max(self.box.timestamp + lifetime, 0)))

    @rule(buyer=prosumers, offer=st.integers(0, 4), amount=st.integers(0, 2_000) | st.just("rest"),
          escrow=st.booleans())
    def allocate_energy(self, buyer, offer, amount, escrow):
        """Allocate part or all of an offer and, if `escrow`, approve and escrow its price."""
        count = self._chain_call(ADMIN, OFFERS, "offerCount()", (), "uint256")
        offer = offer % count if count and offer < 4 else offer  # mostly an offer that exists
        if amount == "rest":
            amount = self.box.call(ADMIN, OFFERS, "offer(uint256)", (offer,),
                                   returns=("address", "uint256", "uint256", "uint256", "uint64", "bool"))[2] \
                if offer < count else 1
        allocations = self._chain_call(ADMIN, OFFERS, "allocationCount()", (), "uint256")
        if self._offers_call(ACTORS[buyer], "allocateEnergy(uint256,uint256)", (offer, amount)) and escrow:
            self.approve(FIAT_TOKEN, buyer, SPENDERS.index(OFFERS), "max")
            self._offers_call(ACTORS[buyer], "allowTransaction(uint256)", (allocations,))

    @rule(sender=prosumers, allocation=st.integers(0, 4),
          step=st.sampled_from(["allowTransaction", "makeTransaction", "refund"]))
    def settle_allocation(self, sender, allocation, step):
        count = self._chain_call(ADMIN, OFFERS, "allocationCount()", (), "uint256")
        if count and allocation < 4:  # mostly an allocation that exists, by its buyer
            allocation %= count
            _offer, buyer = self.box.call(ADMIN, OFFERS, "allocation(uint256)", (allocation,),
                                          returns=("uint256", "address"))
            sender = ACTORS.index(Address.from_hex(buyer)) if sender != 4 else sender  # prosumer 4: a stranger
        self._offers_call(ACTORS[sender], f"{step}(uint256)", (allocation,))

    @rule(allocation=st.integers(0, 3), outcome=st.sampled_from(["delivered", "expired"]))
    def close_allocation(self, allocation, outcome):
        """Paper 002's confirmation: the buyer's meter reports the energy and the escrow pays
        the seller; or the offer expires and the buyer takes the refund."""
        count = self._chain_call(ADMIN, OFFERS, "allocationCount()", (), "uint256")
        if not count:
            return
        allocation %= count
        _offer, buyer, amount = self.box.call(ADMIN, OFFERS, "allocation(uint256)", (allocation,),
                                              returns=("uint256", "address", "uint256"))
        buyer = ACTORS.index(Address.from_hex(buyer))
        if outcome == "delivered":
            self.approve(FIAT_TOKEN, buyer, SPENDERS.index(OFFERS), "max")
            self._offers_call(ACTORS[buyer], "allowTransaction(uint256)", (allocation,))
            if (ACTORS[buyer], self._chain_call(ADMIN, METERS, "currentSlot()", (), "uint64")) in self.posted:
                self.time_passes(900)
            self.post_reading(buyer, True, 0, 0, amount, 0)
            self._offers_call(ACTORS[buyer], "makeTransaction(uint256)", (allocation,))
        else:
            self.time_passes(7_300)
            self._offers_call(ACTORS[buyer], "refund(uint256)", (allocation,))

    @rule(seller=prosumers, other=st.integers(1, 3), generation=st.integers(1, 3_000), share=st.integers(1, 100),
          outcome=st.sampled_from(["delivered", "expired"]))
    def paper002_trade(self, seller, other, generation, share, outcome):
        """A whole trade of paper 002: metered energy offered, part of it bought and escrowed by
        another prosumer, then delivered and paid, or expired and refunded."""
        buyer = (seller - 1 + other) % 4 + 1
        self.metered_seller(seller, generation, 100, 25, 3_600)
        offer = self._chain_call(ADMIN, OFFERS, "offerCount()", (), "uint256") - 1
        if offer < 0:
            return
        remaining = self.box.call(ADMIN, OFFERS, "offer(uint256)", (offer,),
                                  returns=("address", "uint256", "uint256"))[2]
        allocations = self._chain_call(ADMIN, OFFERS, "allocationCount()", (), "uint256")
        if self._offers_call(ACTORS[buyer], "allocateEnergy(uint256,uint256)",
                             (offer, max(remaining * share // 100, 1))):
            self.close_allocation(allocations, outcome)

    @rule(seller=prosumers, offer=st.integers(0, 4))
    def cancel_offer(self, seller, offer):
        count = self._chain_call(ADMIN, OFFERS, "offerCount()", (), "uint256")
        offer = offer % count if count and offer < 4 else offer
        self._offers_call(ACTORS[seller], "cancelOffer(uint256)", (offer,))

    def _offers_call(self, sender: Address, signature: str, args: tuple) -> bool:
        """The Offers contract escrows with transferFrom and pays out with transfer; the
        invariants check that supply and sums hold, then the model takes the new balances and
        the allowances granted to Offers from the chain."""
        name = signature.split("(")[0]
        escrow_before = None
        if name in ("allowTransaction", "makeTransaction", "refund") \
                and args[0] < self._chain_call(ADMIN, OFFERS, "allocationCount()", (), "uint256"):
            escrow_before = self._allocation(args[0])
        result = self.box.transact(sender, OFFERS, signature, args)
        event(f"{name}: {result.reason or 'ok'}")
        assert result.ok or result.reason.startswith(("offers: ", "fiat: ", "energy: ")), result.reason
        state = self.box.state
        if result.ok and name == "allocateEnergy":
            _offer, _buyer, wh, cost, _baseline, _status = self._allocation(result.decode("uint256")[0])
            price = self.box.call(ADMIN, OFFERS, "offer(uint256)", (args[0],),
                                  returns=("address", "uint256", "uint256", "uint256"))[3]
            assert (cost - 1) * 1_000 < wh * price <= cost * 1_000, f"{wh} Wh at {price}/kWh cost {cost}"
        if result.ok and escrow_before is not None:
            cost, status = escrow_before[3], escrow_before[5]
            moved = {"allowTransaction": cost, "makeTransaction": -cost, "refund": -cost if status == 2 else 0}[name]
            assert ERC20Token.balance_at(state, FIAT_TOKEN, OFFERS) - self._balance(FIAT_TOKEN, OFFERS) == moved, \
                f"{name} moved other than the allocation's stored cost"
        for token in TOKENS:
            assert ERC20Token.total_supply_at(state, token) == self.supply[token], f"{signature} changed a supply"
            chain = {h: ERC20Token.balance_at(state, token, h) for h in HOLDERS}
            assert sum(chain.values()) == self.supply[token], f"{signature} made {TOKENS[token]} appear or vanish"
            if not result.ok:
                assert chain == {h: self._balance(token, h) for h in HOLDERS}, f"a reverted {signature} moved tokens"
            self.balances[token] = chain
            for key in [k for k in self.allowances if k[0] == token and k[2] == OFFERS]:
                self.allowances[key] = self._chain_call(ADMIN, token, "allowance(address,address)",
                                                        (hexa(key[1]), hexa(OFFERS)), "uint256")
        return result.ok

    def _allocation(self, allocation_id: int) -> tuple:
        """(offerId, buyer, amountWh, amountFiat, baselineWh, status) of an Offers allocation."""
        return self.box.call(ADMIN, OFFERS, "allocation(uint256)", (allocation_id,),
                             returns=("uint256", "address", "uint256", "uint256", "uint256", "uint8"))

    # -- invariants, after every step -----------------------------------------------------------
    @invariant()
    def tokens_are_conserved(self):
        state = self.box.state
        for token in TOKENS:
            chain = {h: ERC20Token.balance_at(state, token, h) for h in HOLDERS}
            supply = ERC20Token.total_supply_at(state, token)
            assert supply == self.supply[token], f"{TOKENS[token]} supply moved other than by mint and burn"
            assert sum(chain.values()) == supply, f"{TOKENS[token]}: balances do not add up to totalSupply"
            assert chain == {h: self._balance(token, h) for h in HOLDERS}
            assert all(0 <= b <= supply for b in chain.values())
        assert all(0 <= a for a in self.allowances.values())

    @invariant()
    def elecoins_are_conserved(self):
        assert self._elecoin_total() == self.elecoins, "elecoins appeared or vanished under PoA"

    @invariant()
    def chain_allowances_match(self):
        for (token, owner, spender), amount in self.allowances.items():
            assert self._chain_call(ADMIN, token, "allowance(address,address)",
                                    (hexa(owner), hexa(spender)), "uint256") == amount


MarketModel.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
test_market_calls_conserve_tokens_and_elecoins = MarketModel.TestCase
