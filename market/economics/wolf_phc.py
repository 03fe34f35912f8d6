"""DMA-UBRL: the edge server and the prosumers each learn by WoLF-PHC (paper 000, §III-A, Algorithm 1).

Every agent keeps a Q table, a mixed policy π and its running average π̄. After
each move it updates Q (step 4), moves π̄ towards π (step 5), and shifts
probability mass from every other action to its greedy one by at most
ε/(|A| − 1) each (step 6), where ε is ε_win when π already earns more against Q
than π̄ does and the larger ε_lose otherwise: cautious when winning, fast when
losing, which is what lets simultaneous learners settle instead of chasing
each other.

States. The paper gives the server the previous demands x^(t−1) as its state,
but its reward (eq. 2) depends only on the price it posts now and the demands
that answer it, so that state carries no information while its 31^N values
would leave every table cell unvisited; the server is a single-state learner
(the repeated game). A prosumer's state is the price it is shown, because in
the Stackelberg game the follower moves after seeing the leader's price; its
next state is the next price posted. Under discriminated pricing the server
runs one such single-state learner per prosumer, since eq. 2 is a sum of one
term per prosumer.

Episodes. An episode is one posted price held for `FOLLOWER_STEPS` trading
rounds: the prosumers learn every round, the server once, from its mean
utility over the episode. The leader must learn more slowly than the
followers answer it (see `FOLLOWER_STEPS`). What DMA-UBRL "learned" is read
from the final policies: each agent's most likely action.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from market.economics.stackelberg import ActionGrid, Market, prosumer_utility, server_fixed_utility

PAPER_EPISODES = 2000
"""The paper's episode budget (§IV-A)."""
FOLLOWER_STEPS = 40
"""Trading rounds per episode: how long the leader keeps a price for the followers to answer it.

A follower's policy moves at most ε per round, so it needs a few hundred
rounds at a price before it answers that price well, and the leader judges
prices by those answers. With one round per episode the server settles on
19 (or 18) before any prosumer has learned to answer 17; measured over
seeds at the paper's setting, 20 rounds reach the grid equilibrium in most
runs and 40 in all we tried, and under discriminated pricing (whose
per-prosumer profits at adjacent grid prices differ by only 2–4 %) 40
rounds also do in most runs."""


@dataclass(frozen=True)
class WolfParams:
    """Algorithm 1's inputs, with paper 000 §IV-A's values."""

    learning_rate: float = 0.8
    """σ: weight of the newest sample in the Q update (step 4)."""
    discount: float = 0.1
    """γ: weight of the next state's value (step 4)."""
    win_rate: float = 0.0025
    """ε_win: policy step while winning (step 6)."""
    lose_rate: float = 0.01
    """ε_lose: policy step while losing; must exceed ε_win."""
    exploration: float = 0.05
    """Chance of a uniformly random action instead of one drawn from π.

    Algorithm 1 samples from π alone; the WoLF-PHC it condenses (Bowling and
    Veloso) also explores. Without it, an action whose Q value was last set
    while the price was still moving is never tried again once π has left it,
    and followers end one demand step away from their best answer (measured:
    up to 3.5 % off at the paper's setting); 5 % exploration removes that,
    while 10–20 % drowns the leader's signal in random demands."""


@dataclass(frozen=True)
class Learners:
    """WoLF-PHC agents of one kind, each in one state: row j holds agent j's
    Q, π, π̄ and visit count M for the state it is in. The arrays are updated
    in place; the record is frozen only so they are never swapped out."""

    q: np.ndarray
    """Q(s, a), shape (agents, actions)."""
    policy: np.ndarray
    """π(s, a), a distribution over the actions."""
    average: np.ndarray
    """π̄(s, a), the running average of π."""
    visits: np.ndarray
    """M(s), shape (agents,)."""


@dataclass(frozen=True)
class StateTables:
    """The same four tables for agents with several states, shape (agents, states, …)."""

    q: np.ndarray
    policy: np.ndarray
    average: np.ndarray
    visits: np.ndarray


def new_tables(agents: int, states: int, actions: int) -> StateTables:
    """Algorithm 1's initialisation: Q = 0, π = π̄ = 1/|A|, M = 0."""
    uniform = np.full((agents, states, actions), 1.0 / actions)
    return StateTables(q=np.zeros((agents, states, actions)), policy=uniform, average=uniform.copy(),
                       visits=np.zeros((agents, states), dtype=np.int64))


def rows(tables: StateTables, states: np.ndarray) -> Learners:
    """A copy of each agent's tables in its state, to learn on for a while."""
    agents = np.arange(len(states))
    return Learners(q=tables.q[agents, states], policy=tables.policy[agents, states],
                    average=tables.average[agents, states], visits=tables.visits[agents, states])


def store(tables: StateTables, states: np.ndarray, learners: Learners) -> None:
    """Write rows taken by `rows` back into the tables."""
    agents = np.arange(len(states))
    for table, row in ((tables.q, learners.q), (tables.policy, learners.policy),
                       (tables.average, learners.average), (tables.visits, learners.visits)):
        table[agents, states] = row


def act(learners: Learners, rng: np.random.Generator, exploration: float = 0.0) -> np.ndarray:
    """Step 2: each agent draws an action from its policy (or, with chance
    `exploration`, uniformly, so that no action's Q value goes stale)."""
    agents, size = learners.policy.shape
    cumulative = np.cumsum(learners.policy, axis=1)
    draws = rng.random(agents)[:, None] * cumulative[:, -1:]
    chosen = np.minimum((cumulative <= draws).sum(axis=1), size - 1)
    explore = rng.random(agents) < exploration
    return np.where(explore, rng.integers(0, size, agents), chosen)


def learn(learners: Learners, actions: np.ndarray, rewards: np.ndarray, next_values: np.ndarray,
          params: WolfParams) -> None:
    """Steps 4–6 of Algorithm 1 for every agent at once; `next_values` is
    max_a Q(s', a) of each agent's next state."""
    agents, size = learners.policy.shape
    everyone = np.arange(agents)
    q, policy, average = learners.q, learners.policy, learners.average
    q[everyone, actions] += params.learning_rate * (rewards + params.discount * next_values - q[everyone, actions])

    learners.visits[:] += 1
    average += (policy - average) / learners.visits[:, None]

    winning = (policy * q).sum(axis=1) > (average * q).sum(axis=1)
    step = np.where(winning, params.win_rate, params.lose_rate) / (size - 1)
    greedy = np.argmax(q, axis=1)
    moved = np.minimum(policy, step[:, None])
    moved[everyone, greedy] = 0.0
    policy -= moved
    policy[everyone, greedy] += moved.sum(axis=1)


@dataclass(frozen=True)
class LearnedPlay:
    """Where DMA-UBRL's policies ended, and how they got there."""

    prices: tuple[float, ...]
    """The price each prosumer is most likely shown by the final server policy."""
    demands: tuple[float, ...]
    """Each prosumer's most likely demand at that price."""
    price_trace: np.ndarray
    """Expected price under the server's policy after each episode, shape (episodes, prosumers)."""
    demand_trace: np.ndarray
    """Each prosumer's expected demand under its own and the server's policies
    after each episode, shape (episodes, prosumers)."""


def dma_ubrl(market: Market, rng: np.random.Generator, episodes: int = PAPER_EPISODES,
             discriminate: bool = False, grid: ActionGrid = ActionGrid(),
             params: WolfParams = WolfParams(), follower_steps: int = FOLLOWER_STEPS) -> LearnedPlay:
    """Play the leader and the N followers against each other for `episodes`
    episodes. In each the server posts its price(s) and keeps them for
    `follower_steps` trading rounds; every round each prosumer buys and learns
    from its utility (eq. 3); at the end the server learns from its mean
    utility over the rounds (eq. 2) and posts the next episode's price, which
    is the prosumers' next state."""
    n = len(market.intentions)
    prices, demands = np.asarray(grid.prices), np.asarray(grid.demands)
    groups = n if discriminate else 1
    owner = np.arange(n) if discriminate else np.zeros(n, dtype=np.int64)
    everyone = np.arange(n)
    paid = prosumer_utility(demands[None, :, None], prices[:, None, None], market)  # (price, demand, prosumer)
    server = rows(new_tables(groups, 1, len(prices)), np.zeros(groups, dtype=np.int64))
    prosumers = new_tables(n, len(prices), len(demands))
    price_trace, demand_trace = np.empty((episodes, n)), np.empty((episodes, n))

    posted = act(server, rng, params.exploration)
    for episode in range(episodes):
        shown = posted[owner]
        buying = rows(prosumers, shown)
        bought_total = np.zeros(n)
        for step in range(follower_steps):
            bought = act(buying, rng, params.exploration)
            bought_total += demands[bought]
            if step < follower_steps - 1:
                next_values = buying.q.max(axis=1)
            else:
                sales = (prices[shown] - market.unit_cost) * bought_total / follower_steps
                reward = np.bincount(owner, weights=sales, minlength=groups) + server_fixed_utility(market) / groups
                learn(server, posted, reward, server.q.max(axis=1), params)
                posted = act(server, rng, params.exploration)
                store(prosumers, shown, buying)
                next_values = prosumers.q[everyone, posted[owner]].max(axis=1)
            learn(buying, bought, paid[shown, bought, everyone], next_values, params)
        store(prosumers, shown, buying)
        price_trace[episode] = (server.policy @ prices)[owner]
        demand_trace[episode] = np.sum(server.policy[owner] * (prosumers.policy @ demands), axis=1)

    final_prices = np.argmax(server.policy, axis=1)[owner]
    final_demands = np.argmax(prosumers.policy[everyone, final_prices], axis=1)
    return LearnedPlay(prices=tuple(float(p) for p in prices[final_prices]),
                       demands=tuple(float(x) for x in demands[final_demands]),
                       price_trace=price_trace, demand_trace=demand_trace)
