#!/usr/bin/env node
// Compile EnglishAuction.sol and AuctionFactory.sol with solc-js (npm `solc`) into one JSON
// artifact (ABI + creation bytecode per contract) that bench/auction.py deploys with eth_* calls.
//   npm install solc && node bench/solidity/compile.js > bench/solidity/auction.json
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const sources = {};
for (const file of ["EnglishAuction.sol", "AuctionFactory.sol"]) {
  sources[file] = { content: fs.readFileSync(path.join(here, file), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "paris",
              outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } } },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), {
  import: (name) => ({ contents: fs.readFileSync(path.join(here, name), "utf8") }),
}));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
const artifact = { compiler: "solc-js " + solc.version(), contracts: {} };
for (const [file, name] of [["EnglishAuction.sol", "EnglishAuction"], ["AuctionFactory.sol", "AuctionFactory"]]) {
  const c = output.contracts[file][name];
  artifact.contracts[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
}
process.stdout.write(JSON.stringify(artifact, null, 1) + "\n");
