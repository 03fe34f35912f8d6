"""The fiat and energy tokens as a wallet uses them: web3.py contracts from `grid_contracts`,
signed transactions, receipts, decoded events and revert reasons; then the genesis params
and the shared ABI checked in process."""
from __future__ import annotations

import json
import re
from importlib import resources

import pytest
from eth_account import Account
from market.contracts.energy_token import EnergyToken
from market.contracts.fiat_token import FiatToken
from wallet import ACCOUNTS, assert_reverts, events, oracle_of, transact

ZERO = "0x" + "00" * 20



# -- the devnet is ready to trade ------------------------------------------------------
def test_tokens_describe_themselves(fiat, energy):
    assert (fiat.functions.name().call(), fiat.functions.symbol().call(), fiat.functions.decimals().call()) == \
        ("Grid Dollar", "GUSD", 2)
    assert (energy.functions.symbol().call(), energy.functions.decimals().call()) == ("EWH", 0)
    assert energy.functions.meters().call() == "0x6772696400000000000000000000000000000012"


def test_devnet_accounts_hold_fiat(fiat):
    balances = [fiat.functions.balanceOf(a.address).call() for a in ACCOUNTS]
    assert all(b > 0 for b in balances[:20]), "every test account starts with fiat to trade"
    assert fiat.functions.totalSupply().call() >= sum(balances)


def test_native_token_contracts_have_code(w3, fiat, energy):
    assert w3.eth.get_code(fiat.address).startswith(b"\xfegridnode native contract: FiatToken")
    assert w3.eth.get_code(energy.address).startswith(b"\xfegridnode native contract: EnergyToken")


# -- ERC-20 ----------------------------------------------------------------------------
def test_transfer_moves_balance_and_emits_transfer(w3, fiat):
    alice, bob = ACCOUNTS[1], ACCOUNTS[2]
    supply = fiat.functions.totalSupply().call()
    before = fiat.functions.balanceOf(alice.address).call(), fiat.functions.balanceOf(bob.address).call()
    receipt = transact(w3, alice, fiat.functions.transfer(bob.address, 150))
    assert receipt.status == 1
    assert events(fiat, "Transfer", receipt) == [(alice.address, bob.address, 150)]
    assert fiat.functions.balanceOf(alice.address).call() == before[0] - 150
    assert fiat.functions.balanceOf(bob.address).call() == before[1] + 150
    assert fiat.functions.totalSupply().call() == supply
    # a wallet finds the transfer by the indexed recipient
    logs = fiat.events.Transfer().get_logs(from_block=receipt.blockNumber, to_block=receipt.blockNumber,
                                           argument_filters={"to": bob.address})
    assert [log.transactionHash for log in logs] == [receipt.transactionHash]


def test_transfer_above_balance_reverts_and_moves_nothing(w3, fiat):
    carol, dave = ACCOUNTS[3], ACCOUNTS[4]
    balance = fiat.functions.balanceOf(carol.address).call()
    call = fiat.functions.transfer(dave.address, balance + 1)
    assert_reverts(carol, call, "fiat: transfer amount exceeds balance")
    receipt = transact(w3, carol, call, gas=100_000)  # sent anyway: mined, failed, nothing moved
    assert receipt.status == 0 and receipt.logs == []
    assert fiat.functions.balanceOf(carol.address).call() == balance
    assert_reverts(carol, fiat.functions.transfer(ZERO, 1), "fiat: transfer to the zero address")


def test_transfer_batch_pays_many_accounts_in_one_call(w3, energy):
    payer, payees = ACCOUNTS[5], [ACCOUNTS[6].address, ACCOUNTS[7].address, ACCOUNTS[6].address]
    if not energy.functions.isIssuer(payer.address).call():
        transact(w3, ACCOUNTS[0], energy.functions.addIssuer(payer.address))
    transact(w3, payer, energy.functions.mint(payer.address, 600))
    before = {a: energy.functions.balanceOf(a).call() for a in (payer.address, *payees)}
    receipt = transact(w3, payer, energy.functions.transferBatch(payees, [100, 200, 50]))
    assert events(energy, "Transfer", receipt) == [(payer.address, payees[0], 100), (payer.address, payees[1], 200),
                                                   (payer.address, payees[2], 50)]
    assert energy.functions.balanceOf(payer.address).call() == before[payer.address] - 350
    assert energy.functions.balanceOf(payees[0]).call() == before[payees[0]] + 150
    assert energy.functions.balanceOf(payees[1]).call() == before[payees[1]] + 200


@pytest.mark.parametrize("recipients, amounts, reason", [
    ([ACCOUNTS[2].address], [1, 2], "fiat: recipients and amounts differ in length"),
    ([ACCOUNTS[2].address, ZERO], [1, 1], "fiat: transfer to the zero address"),
    ([ACCOUNTS[2].address], [10**30], "fiat: transfer amount exceeds balance"),
])
def test_transfer_batch_is_all_or_nothing(w3, fiat, recipients, amounts, reason):
    sender = ACCOUNTS[8]
    balance = fiat.functions.balanceOf(sender.address).call()
    assert_reverts(sender, fiat.functions.transferBatch(recipients, amounts), reason)
    assert fiat.functions.balanceOf(sender.address).call() == balance


def test_approve_then_transfer_from_spends_the_allowance(w3, fiat):
    owner, spender, recipient = ACCOUNTS[4], ACCOUNTS[5], ACCOUNTS[6]
    receipt = transact(w3, owner, fiat.functions.approve(spender.address, 500))
    assert events(fiat, "Approval", receipt) == [(owner.address, spender.address, 500)]
    assert fiat.functions.allowance(owner.address, spender.address).call() == 500

    assert_reverts(spender, fiat.functions.transferFrom(owner.address, recipient.address, 501),
                   "fiat: insufficient allowance")
    before = fiat.functions.balanceOf(owner.address).call(), fiat.functions.balanceOf(recipient.address).call()
    receipt = transact(w3, spender, fiat.functions.transferFrom(owner.address, recipient.address, 200))
    assert events(fiat, "Transfer", receipt) == [(owner.address, recipient.address, 200)]
    assert fiat.functions.allowance(owner.address, spender.address).call() == 300
    assert fiat.functions.balanceOf(owner.address).call() == before[0] - 200
    assert fiat.functions.balanceOf(recipient.address).call() == before[1] + 200
    # only the approved spender may pull, and only from the owner who approved it
    assert_reverts(recipient, fiat.functions.transferFrom(owner.address, recipient.address, 1),
                   "fiat: insufficient allowance")
    assert_reverts(owner, fiat.functions.approve(ZERO, 1), "fiat: approve to the zero address")
    transact(w3, owner, fiat.functions.approve(spender.address, 0))
    assert fiat.functions.allowance(owner.address, spender.address).call() == 0


@pytest.mark.parametrize("kind", ["FiatToken", "EnergyToken"])
def test_admin_approved_issuers_mint(w3, market, kind):
    token, prefix = market[kind], {"FiatToken": "fiat", "EnergyToken": "energy"}[kind]
    admin, issuer, holder, outsider = ACCOUNTS[0], ACCOUNTS[7], ACCOUNTS[8], ACCOUNTS[9]
    assert_reverts(outsider, token.functions.mint(holder.address, 1), f"{prefix}: caller is not an issuer")
    assert_reverts(outsider, token.functions.addIssuer(outsider.address), f"{prefix}: caller is not an admin")
    assert token.functions.isIssuer(issuer.address).call() is False

    receipt = transact(w3, admin, token.functions.addIssuer(issuer.address))
    assert events(token, "IssuerAdded", receipt) == [(issuer.address, admin.address)]
    assert token.functions.isIssuer(issuer.address).call() is True
    assert_reverts(admin, token.functions.addIssuer(issuer.address), f"{prefix}: account is already an issuer")

    supply, held = token.functions.totalSupply().call(), token.functions.balanceOf(holder.address).call()
    receipt = transact(w3, issuer, token.functions.mint(holder.address, 2_500))
    assert events(token, "Transfer", receipt) == [(ZERO, holder.address, 2_500)]
    assert token.functions.totalSupply().call() == supply + 2_500
    assert token.functions.balanceOf(holder.address).call() == held + 2_500
    assert_reverts(issuer, token.functions.mint(ZERO, 1), f"{prefix}: mint to the zero address")

    receipt = transact(w3, admin, token.functions.removeIssuer(issuer.address))
    assert events(token, "IssuerRemoved", receipt) == [(issuer.address, admin.address)]
    assert_reverts(issuer, token.functions.mint(holder.address, 1), f"{prefix}: caller is not an issuer")
    assert_reverts(admin, token.functions.removeIssuer(issuer.address), f"{prefix}: account is not an issuer")


def test_holder_burns_its_own_tokens(w3, fiat):
    holder = ACCOUNTS[10]
    supply, balance = fiat.functions.totalSupply().call(), fiat.functions.balanceOf(holder.address).call()
    assert_reverts(holder, fiat.functions.burn(balance + 1), "fiat: burn amount exceeds balance")
    receipt = transact(w3, holder, fiat.functions.burn(40))
    assert events(fiat, "Transfer", receipt) == [(holder.address, ZERO, 40)]
    assert fiat.functions.balanceOf(holder.address).call() == balance - 40
    assert fiat.functions.totalSupply().call() == supply - 40


# -- paper 002's MintWatts -----------------------------------------------------------------
def test_mint_watts_only_by_the_oracle_and_only_what_it_metered(w3, energy, meters):
    prosumer, oracle, stranger = ACCOUNTS[11], oracle_of(11), ACCOUNTS[12]
    assert meters.functions.oracleOf(prosumer.address).call() == oracle.address
    slot = meters.functions.currentSlot().call()
    start = energy.functions.mintable(prosumer.address).call()
    transact(w3, oracle, meters.functions.postReading(prosumer.address, slot, 1_200, 300, 5_000))
    assert energy.functions.mintable(prosumer.address).call() == start + 1_200

    assert_reverts(stranger, energy.functions.mintWatts(prosumer.address, 100),
                   "energy: caller is not the prosumer's meter oracle")
    assert_reverts(prosumer, energy.functions.mintWatts(prosumer.address, 100),
                   "energy: caller is not the prosumer's meter oracle")
    assert_reverts(oracle, energy.functions.mintWatts(prosumer.address, start + 1_201),
                   "energy: amount exceeds the reported generation not yet minted")

    supply, held = energy.functions.totalSupply().call(), energy.functions.balanceOf(prosumer.address).call()
    minted = energy.functions.mintedWatts(prosumer.address).call()
    receipt = transact(w3, oracle, energy.functions.mintWatts(prosumer.address, start + 1_000))
    assert events(energy, "Transfer", receipt) == [(ZERO, prosumer.address, start + 1_000)]
    assert events(energy, "WattsMinted", receipt) == [(prosumer.address, oracle.address, start + 1_000)]
    assert energy.functions.balanceOf(prosumer.address).call() == held + start + 1_000
    assert energy.functions.totalSupply().call() == supply + start + 1_000
    assert energy.functions.mintedWatts(prosumer.address).call() == minted + start + 1_000
    assert energy.functions.mintable(prosumer.address).call() == 200

    assert_reverts(oracle, energy.functions.mintWatts(prosumer.address, 201),
                   "energy: amount exceeds the reported generation not yet minted")
    transact(w3, oracle, energy.functions.mintWatts(prosumer.address, 200))
    assert energy.functions.mintable(prosumer.address).call() == 0
    assert_reverts(oracle, energy.functions.mintWatts(prosumer.address, 1),
                   "energy: amount exceeds the reported generation not yet minted")
    assert_reverts(oracle, energy.functions.mintWatts(prosumer.address, 0), "energy: zero amount")
    # the minted watts are ordinary tokens: the prosumer can sell them on
    receipt = transact(w3, prosumer, energy.functions.transfer(stranger.address, 700))
    assert events(energy, "Transfer", receipt) == [(prosumer.address, stranger.address, 700)]


def test_mint_watts_for_a_prosumer_without_a_meter(w3, energy):
    admin, nobody = ACCOUNTS[0], Account.create()
    assert energy.functions.mintable(nobody.address).call() == 0
    assert_reverts(admin, energy.functions.mintWatts(nobody.address, 1),
                   "energy: no meter oracle registered for the prosumer")


# -- in process: the shared ABI and the genesis params ----------------------------------------
def _abi(name: str) -> list[dict]:
    return json.loads(resources.files("market.contracts").joinpath(name).read_text())


def test_both_tokens_ship_the_one_erc20_fragment_set():
    shared = _abi("erc20.abi.json")
    for contract in (FiatToken(), EnergyToken()):
        assert contract.abi[:len(shared)] == shared, f"{contract.name}'s ABI drifted from erc20.abi.json"
    assert [e["name"] for e in EnergyToken().abi[len(shared):]] == \
        ["mintWatts", "mintable", "mintedWatts", "meters", "WattsMinted"]
    assert len(FiatToken().abi) == len(shared)


def test_genesis_params_are_normalised():
    holder = ACCOUNTS[1].address
    token = FiatToken(None, {"balances": {holder: "0x64", ACCOUNTS[2].address.lower(): "250"},
                             "issuers": [ACCOUNTS[0].address.lower()], "decimals": 6, "symbol": "USDX"})
    assert token.params["decimals"] == 6 and token.params["symbol"] == "USDX" and token.params["name"] == "Grid Dollar"
    assert sorted(token.params["balances"].values()) == [100, 250]
    assert [a.to_checksum() for a in token.params["issuers"]] == [ACCOUNTS[0].address]
    assert EnergyToken().params["meters"].to_checksum() == "0x6772696400000000000000000000000000000012"


@pytest.mark.parametrize("params, message", [
    ({"decimals": 37}, "FiatToken.decimals"),
    ({"decimals": True}, "FiatToken.decimals"),
    ({"symbol": ""}, "FiatToken.symbol"),
    ({"issuers": ["0x1234"]}, "FiatToken.issuers[0]"),
    ({"issuers": [ZERO]}, "zero address"),
    ({"balances": {ZERO: 1}}, "zero address"),
    ({"balances": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": -1}}, "outside"),
    ({"balances": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": 1.5}}, "integer"),
    ({"balances": {"0x70997970C51812dc3a010c7d01b50e0d17dc79C8": 1}}, "checksum"),
    ({"balances": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": 1,
                   "0x70997970C51812dc3A010C7d01b50e0d17dc79C8": 2}}, "listed twice"),
    ({"balances": {"0x70997970c51812dc3a010c7d01b50e0d17dc79c8": 2**256 - 1,
                   "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc": 1}}, "exceeds 2**256-1"),
    ({"supply": 5}, "unknown params"),
])
def test_bad_genesis_params_name_the_field(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        FiatToken(None, params)
