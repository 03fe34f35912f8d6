"""The fiat token (paper 002's "virtualized fiduciary money"): an ERC-20 in cents.

One token base unit is one cent of the grid's currency (decimals 2): a balance of
12_345 reads as 123.45 GUSD in a wallet. Issuers mint against deposits made
outside the chain and burn what holders hand back for redemption. Buyers pay
for elecoins (ElecoinExchange.buyToken) and for energy (Offers' escrow) in it,
after `approve`-ing the contract that pulls the payment with `transferFrom`.
All logic is the shared ERC-20 in market/contracts/erc20.py."""
from __future__ import annotations

from market.contracts.addresses import FIAT_TOKEN
from market.contracts.erc20 import ERC20Token


class FiatToken(ERC20Token):
    name = "FiatToken"
    abi_file = "fiat_token.abi.json"
    default_address = FIAT_TOKEN
    token_name = "Grid Dollar"
    token_symbol = "GUSD"
    token_decimals = 2
    reason_prefix = "fiat"
