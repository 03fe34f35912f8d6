"""The running node: storage, chain, mempool, block production, RPC and their wiring."""
