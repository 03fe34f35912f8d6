"""The energy market: native contracts and the economics they rest on."""
