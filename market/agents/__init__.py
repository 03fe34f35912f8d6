"""Paper 002's agents (§II-B, §III) as plain classes that trade through JSON-RPC with web3.py,
like any wallet: they hold a key, read the market contracts listed by `grid_contracts`, and
send signed transactions.

- `MeterAgent` (the SMA/PVA/BSA oracles): posts its prosumer's reading each settlement slot
  (synthetic or from a CSV file) and mints energy tokens against the generation it reported
  (`EnergyToken.mintWatts`).
- `SellerAgent` (SA): publishes an offer on its surplus of energy tokens each hour.
- `BuyerAgent` (BA): buys the cheapest offers until its hourly demand is met (allocate, escrow
  with `allowTransaction`), then settles with `makeTransaction` once its meter shows delivery.
- `OperatorAgent` (MGO): covers the microgrid's imbalance with a standing offer at the grid
  price, and admits new members through `Registry.register`.
- `ScheduledAuctions`, `OwnAuction`, `Bidder` (auction_schemes.py): paper 004's running
  schemes on the block clock: the operator's scheduled auctions (RS1), a seller's own auction
  (RS2), and bidders that find auctions through the factory (RS3).

Energy is traded in hourly batches (`HourlyBatch`): the first 50 minutes of an hour negotiate
the next hour's energy, the last 10 confirm; a time scale lets an hour pass in seconds.
`gridnode agent …` (cli/agent.py) runs each as a process."""
from market.agents.auction_schemes import Bidder, OwnAuction, ScheduledAuctions
from market.agents.buyer import BuyerAgent
from market.agents.client import AgentError, MarketClient
from market.agents.meter import MeterAgent
from market.agents.operator import OperatorAgent
from market.agents.readings import CsvReadings, SyntheticReadings
from market.agents.schedule import HourlyBatch
from market.agents.seller import SellerAgent

__all__ = ["AgentError", "Bidder", "BuyerAgent", "CsvReadings", "HourlyBatch", "MarketClient", "MeterAgent",
           "OperatorAgent", "OwnAuction", "ScheduledAuctions", "SellerAgent", "SyntheticReadings"]
