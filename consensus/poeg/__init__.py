"""Proof of energy generation (paper 003 ch. 3, issue 11).

The producer proposes with floats and solvers; validators only check, in integers. One concern
per module: `certificate` (one coalition LP's optimality certificate), `settlement` (a slot's
partition, scores and reward shares: propose and verify), `ledger` (the engine's state),
`messages` (settlement, equivocation evidence, stability challenges) and `engine` (the Engine).
"""
