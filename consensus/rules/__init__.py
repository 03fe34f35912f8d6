"""The integer rules a validator recomputes bit for bit: PoEG and PoSOC proof scores, the line-loss
model, Shapley shares of an integer game and the settlement checks.

Nothing in this package imports numpy, scipy or an LP solver (tests/economics/test_rules_imports.py
checks it in a fresh interpreter), so the consensus path carries no float library. The proposer's
float forms and the simulations live beside it in `market.economics` and import from here.
"""
