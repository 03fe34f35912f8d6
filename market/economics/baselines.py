"""The comparison policies of paper 000's Fig. 4.

The paper sets DMA-UBRL against a genetic algorithm that optimises only the
prosumers' utility, one that optimises only the edge server's, and random
play. A one-sided GA acts as a planner for that side: it chooses the price and
every demand together from the learners' action grids, so it shows what
ignoring the other side costs that side. Random play draws price and demands
uniformly from the same grids.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from market.economics.stackelberg import ActionGrid, Market, Outcome, outcome, prosumer_utility, server_utility


@dataclass(frozen=True)
class Utilities:
    """What a policy pays each side, the two axes of Fig. 4."""

    server: float
    """U^e (eq. 2)."""
    prosumers: float
    """The mean U_i^p over prosumers (eq. 3)."""


@dataclass(frozen=True)
class GeneticParams:
    """A small steady GA: tournament selection, uniform crossover, reset mutation, elitism."""

    population: int = 60
    generations: int = 150
    tournament: int = 3
    crossover: float = 0.9
    """Chance that two parents are recombined rather than copied."""
    mutation: float = 0.05
    """Chance that each gene is reset to a uniformly random value."""
    elite: int = 2
    """The best genomes copied unchanged into the next generation."""


def utilities(played: Outcome) -> Utilities:
    """Fig. 4's two numbers for one outcome."""
    return Utilities(server=played.server_utility, prosumers=float(np.mean(played.prosumer_utilities)))


def genetic_search(fitness: Callable[[np.ndarray], np.ndarray], sizes: Sequence[int],
                   rng: np.random.Generator, params: GeneticParams = GeneticParams()) -> np.ndarray:
    """Maximise `fitness` (rows of genomes → one score each) over integer genomes
    whose gene j ranges over 0..sizes[j]−1; returns the best genome seen."""
    sizes = np.asarray(sizes)
    population = rng.integers(0, sizes, size=(params.population, len(sizes)))
    scores = fitness(population)
    for _ in range(params.generations):
        order = np.argsort(-scores, kind="stable")
        contenders = rng.integers(0, params.population, size=(2, params.population, params.tournament))
        winners = np.argmax(scores[contenders], axis=2)[..., None]
        parents = population[np.take_along_axis(contenders, winners, axis=2)[..., 0]]
        mixed = rng.random((params.population, len(sizes))) < 0.5
        recombine = (rng.random(params.population) < params.crossover)[:, None]
        children = np.where(recombine & mixed, parents[1], parents[0])
        mutate = rng.random(children.shape) < params.mutation
        children = np.where(mutate, rng.integers(0, sizes, size=children.shape), children)
        children[:params.elite] = population[order[:params.elite]]
        population, scores = children, fitness(children)
    return population[int(np.argmax(scores))]


def genetic_outcome(market: Market, objective: Literal["server", "prosumers"], rng: np.random.Generator,
                    grid: ActionGrid = ActionGrid(), params: GeneticParams = GeneticParams()) -> Outcome:
    """The grid price and demands a GA picks to maximise one side's utility only
    (genome: a price index, then one demand index per prosumer)."""
    prices, demands = np.asarray(grid.prices), np.asarray(grid.demands)
    n = len(market.intentions)

    def fitness(genomes: np.ndarray) -> np.ndarray:
        price, demand = prices[genomes[:, :1]], demands[genomes[:, 1:]]
        if objective == "server":
            return server_utility(price, demand, market)
        return prosumer_utility(demand, price, market).sum(axis=1)

    best = genetic_search(fitness, [len(prices)] + [len(demands)] * n, rng, params)
    return outcome(prices[best[0]], demands[best[1:]], market)


def random_utilities(market: Market, grid: ActionGrid = ActionGrid()) -> Utilities:
    """The expected utilities when the server and every prosumer pick uniformly
    from their grids, computed exactly: price and demands are independent, and
    eq. 2 is linear in each demand, so the expectation needs no sampling."""
    prices, demands = np.asarray(grid.prices), np.asarray(grid.demands)
    n = len(market.intentions)
    server = server_utility(prices.mean(), np.full(n, demands.mean()), market)
    prosumers = prosumer_utility(demands[:, None, None], prices[None, :, None], market).mean(axis=(0, 1))
    return Utilities(server=float(server), prosumers=float(prosumers.mean()))
