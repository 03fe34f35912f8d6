// SPDX-License-Identifier: MIT
// Paper 004's auction factory (running scheme RS3) in Solidity, with the ABI of gridnode's native
// AuctionFactory (market/contracts/auction_factory.py).
pragma solidity ^0.8.20;

import "./EnglishAuction.sol";

contract AuctionFactory {
    address[] private auctions;
    mapping(address => address[]) private owned;

    event AuctionCreated(address indexed auction, address indexed owner);

    function createAuction(uint256 bidIncrement, uint256 startBlock, uint256 endBlock) external returns (address) {
        address auction = address(new EnglishAuction(msg.sender, bidIncrement, startBlock, endBlock));
        auctions.push(auction);
        owned[msg.sender].push(auction);
        emit AuctionCreated(auction, msg.sender);
        return auction;
    }

    function auctionCount() external view returns (uint256) {
        return auctions.length;
    }

    function auctionAt(uint256 index) external view returns (address) {
        require(index < auctions.length, "factory: index out of range");
        return auctions[index];
    }

    function auctionsOf(address owner) external view returns (address[] memory) {
        return owned[owner];
    }
}
