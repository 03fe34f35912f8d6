"""Proof of state of charge (paper 003 ch. 4, issue 12): the engine (`engine`); the integer
score rules are `consensus.rules.posoc`."""
