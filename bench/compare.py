#!/usr/bin/env python3
"""gridnode beside Anvil on this machine: the same transfer benchmark (bench/transfers.py, only
standard eth_* calls) against a fresh gridnode devnet and, if it is installed, a fresh Anvil with
the same block time (1 s), gas limit (60M) and funded test accounts, one after the other, the
client sharing the cores with the node as a wallet would. Prints the table with gridnode's ratio
to Anvil, and writes it as JSON and a PNG bar chart.

    python bench/compare.py --txs 10000                  # Anvil found on PATH or from npm (README: Benchmarks)
    python bench/compare.py --txs 2000 --anvil /path/to/anvil --out /tmp/compare
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from nodes import Started, find_anvil, start_anvil, start_gridnode

HERE = Path(__file__).resolve().parent
COLUMNS = [("confirmed_tps", "confirmed tx/s", "{:,.0f}"), ("submit_tps", "submit tx/s", "{:,.0f}"),
           ("p50", "p50", "{:.0f} ms"), ("p95", "p95", "{:.0f} ms"), ("rss_mib", "RSS", "{:.0f} MiB")]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--txs", type=int, default=10_000, help="transfers per node (default 10000)")
    parser.add_argument("--senders", type=int, default=20, help="test accounts sending (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all receipts (default 300)")
    parser.add_argument("--anvil", metavar="BIN", help="Anvil binary (default: on PATH or installed from npm)")
    parser.add_argument("--no-anvil", action="store_true", help="measure gridnode only")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="directory for compare.json and "
                        "compare.png (default ./bench-out)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser.parse_args()


def measure(node: Started, args: argparse.Namespace, pid: int | None = None) -> dict:
    """bench/transfers.py against `node`, in its own process, with its --json report (RSS of
    `pid`, by default the node's own process)."""
    print(f"{node.label}: {args.txs} transfers at {node.url} …", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(HERE / "transfers.py"), "--rpc", node.url, "--txs", str(args.txs),
                           "--senders", str(args.senders), "--concurrency", str(args.concurrency),
                           "--timeout", str(args.timeout), "--pid", str(pid or node.pid), "--json"],
                          capture_output=True, text=True, timeout=args.timeout + 300)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"bench/transfers.py failed against {node.label}:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    for key in ("p50", "p95", "max"):
        result[key] = None if result[key] is None else result[key] * 1000  # ms
    result["label"] = node.label
    result["lost"] = args.txs - result["confirmed"]
    return result


def table(rows: list[dict], reference_label: str = "anvil") -> str:
    """The rows as aligned text, each figure with its ratio to the reference row's."""
    reference = next((r for r in rows if r["label"] == reference_label), None)
    header = ["node"] + [title for _, title, _ in COLUMNS] + ["lost"]
    lines = [header]
    for row in rows:
        cells = [row["label"]]
        for key, _, form in COLUMNS:
            value = row.get(key)
            cell = "—" if value is None else form.format(value)
            if reference and row is not reference and value and reference.get(key):
                cell += f" ({value / reference[key]:.2f}×)"
            cells.append(cell)
        lines.append(cells + [str(row["lost"])])
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in lines)


def chart(rows: list[dict], path: Path, reference_label: str = "anvil") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    labels = [r["label"] for r in rows]
    for ax, (key, title) in zip(axes, [("confirmed_tps", "confirmed transfers/s"), ("submit_tps", "submitted/s"),
                                       ("p95", "p95 submit→receipt (ms)")]):
        colours = ["#888" if label == reference_label else "#2a7" for label in labels]
        ax.bar(labels, [r.get(key) or 0 for r in rows], color=colours)
        ax.set_title(title)
    figure.suptitle(f"{rows[0]['transactions']} transfers, {rows[0]['senders']} senders, "
                    f"{rows[0]['concurrency']} in flight, 1 s blocks")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> int:
    args = parse_args()
    anvil = None if args.no_anvil else (args.anvil or find_anvil())
    if not args.no_anvil and anvil is None:
        print("Anvil not found (README: Benchmarks tells how to install it); measuring gridnode only",
              file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridnode-compare-") as tmp:
        root = Path(tmp)
        starts = [lambda: start_gridnode(root, "gridnode", p2p=True)]
        if anvil:
            starts.append(lambda: start_anvil(root, anvil))
        for start in starts:
            node = start()
            try:
                rows.append(measure(node, args))
            finally:
                node.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"rows": rows, "parameters": {"txs": args.txs, "senders": args.senders,
                                           "concurrency": args.concurrency, "block_time": 1, "gas_limit": 60_000_000}}
    (args.out / "compare.json").write_text(json.dumps(report, indent=2))
    chart(rows, args.out / "compare.png")
    if args.json:
        print(json.dumps(report))
    else:
        print(table(rows))
        print(f"written: {args.out / 'compare.json'}, {args.out / 'compare.png'}")
    return 0 if all(r["lost"] == 0 and not r["failures"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
