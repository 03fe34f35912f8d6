"""The economics the market and the PoEG/PoSOC engines rest on (papers 000, 001, 003).

Floats and LP solvers here *propose*; the integer forms a chain verifies are in `rules`,
which imports no numpy."""
