"""Proof of energy generation (paper 003 ch. 3, issue 11): the engine's exact integer rules.

The producer proposes with floats and solvers; validators only check, in integers. This package
holds those checks, one concern per module. Today: `certificate`, the LP optimality certificate
of one coalition's settlement (plan, dual prices, objective). To come beside it: the slot's
settlement (partition, scores, reward shares), the WRS producer draw and the engine itself.
"""
