"""Ethereum JSON-RPC 2.0 over HTTP (aiohttp): protocol, parameters, methods, JSON shapes."""
