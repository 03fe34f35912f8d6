"""The market's native contracts (papers 000 and 002), one module and one ABI JSON each.

`CATALOG` names every kind the genesis may place; the genesis factory
(`genesis/contracts.py`) imports a kind only when a genesis asks for it."""
from __future__ import annotations

CATALOG: dict[str, str] = {
    "FiatToken": "market.contracts.fiat_token:FiatToken",
    "EnergyToken": "market.contracts.energy_token:EnergyToken",
    "Meters": "market.contracts.meters:Meters",
    "ElecoinExchange": "market.contracts.exchange:ElecoinExchange",
    "ETSC": "market.contracts.etsc:ETSC",
    "Offers": "market.contracts.offers:Offers",
    "EnglishAuction": "market.contracts.auction:EnglishAuction",
    "AuctionFactory": "market.contracts.auction_factory:AuctionFactory",
    "DoubleAuction": "market.contracts.double_auction:DoubleAuction",
    "EVChargers": "market.contracts.ev_chargers:EVChargers",
    "V2VMarket": "market.contracts.v2v_market:V2VMarket",
}
