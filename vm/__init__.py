"""The state-transition function: types, encodings, state, gas and native contracts.

Nothing here does I/O or reads the clock; every function is deterministic in its inputs.
"""
