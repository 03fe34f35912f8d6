"""Consensus engines behind one interface, and the models they rest on."""
