"""Paper 004's Table 1, the one replay both auction suites run (in process and over JSON-RPC)."""
GWEI = 10**9

PAPER_GAS = {"deploy": 1_520_051, "bid 1": 87_221, "bid 2": 57_211, "bid 3": 42_221, "bid 4": 42_221}
"""Table 1's fees in ether at 1 gwei per gas, as gas (Ropsten, the Solidity contract)."""

TABLE_1 = (("bid 1", 2, 40, 2, 40, 40),                            # min(40, 0 + 75)
           ("bid 2", 3, GWEI, 3, GWEI, 115),                        # min(1e9, 40 + 75)
           ("bid 3", 2, GWEI, 2, GWEI + 40, GWEI + 40),             # min(1e9 + 40, 1e9 + 75)
           ("bid 4", 3, 100, 3, GWEI + 100, GWEI + 100))            # min(1e9 + 100, 1e9 + 115)
"""bidIncrement 75: (step, bidding account, value, leader after, highest bid, binding bid), with
accounts numbered as the paper's Account2 and Account3."""


def print_gas(title: str, gas: dict[str, int]) -> None:
    print(f"\n{title}: gridnode gas vs paper 004 (Ropsten, Solidity)")
    for step, used in gas.items():
        what = "createAuction (the paper: deployment)" if step == "deploy" else step
        print(f"  {what:40s} {used:>10,d} {PAPER_GAS[step]:>12,d}")
