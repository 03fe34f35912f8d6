// SPDX-License-Identifier: MIT
// Paper 004's open English auction (Algorithm 1) in Solidity, the reference that gridnode's
// native EnglishAuction (market/contracts/auction.py) reproduces: the same functions, events and
// revert reasons, so bench/auction.py drives either through the same ABI. An auction is made by
// AuctionFactory.createAuction, which passes the caller as owner.
pragma solidity ^0.8.20;

contract EnglishAuction {
    address public owner;
    uint256 public bidIncrement;
    uint256 public startBlock;
    uint256 public endBlock;
    bool public canceled;
    bool public ownerHasWithdrawn;
    uint256 public highestBid;
    uint256 public highestBindingBid;
    address public highestBidder;
    mapping(address => uint256) public fundsByBidder;

    event LogBid(address indexed bidder, uint256 bid, address highestBidder, uint256 highestBid,
                 uint256 highestBindingBid);
    event LogWithdrawal(address indexed withdrawer, address withdrawalAccount, uint256 amount);
    event LogCanceled();

    constructor(address owner_, uint256 bidIncrement_, uint256 startBlock_, uint256 endBlock_) {
        require(owner_ != address(0), "auction: owner is the zero address");
        require(startBlock_ < endBlock_, "auction: start block is not before the end block");
        require(endBlock_ > block.number, "auction: end block is not in the future");
        owner = owner_;
        bidIncrement = bidIncrement_;
        startBlock = startBlock_;
        endBlock = endBlock_;
    }

    function placeBid() external payable returns (bool) {
        require(block.number >= startBlock, "auction: not started");
        require(block.number <= endBlock, "auction: ended");
        require(!canceled, "auction: canceled");
        require(msg.sender != owner, "auction: owner cannot bid");
        require(msg.value != 0, "auction: zero bid");
        uint256 newBid = fundsByBidder[msg.sender] + msg.value;
        require(newBid > highestBindingBid, "auction: bid too low");
        fundsByBidder[msg.sender] = newBid;
        if (newBid <= highestBid) {
            highestBindingBid = min(newBid + bidIncrement, highestBid);
        } else {
            if (msg.sender != highestBidder) {
                highestBidder = msg.sender;
                highestBindingBid = min(newBid, highestBid + bidIncrement);
            }
            highestBid = newBid;
        }
        emit LogBid(msg.sender, newBid, highestBidder, highestBid, highestBindingBid);
        return true;
    }

    function withdraw() external returns (bool) {
        require(canceled || block.number > endBlock, "auction: not ended");
        address account;
        uint256 amount;
        if (canceled) {
            account = msg.sender;
            amount = fundsByBidder[account];
        } else if (msg.sender == owner) {
            account = highestBidder;
            amount = ownerHasWithdrawn ? 0 : highestBindingBid;
            if (amount > 0) ownerHasWithdrawn = true;
        } else if (msg.sender == highestBidder) {
            account = msg.sender;
            amount = ownerHasWithdrawn ? fundsByBidder[account] : fundsByBidder[account] - highestBindingBid;
        } else {
            account = msg.sender;
            amount = fundsByBidder[account];
        }
        require(amount > 0, "auction: nothing to withdraw");
        fundsByBidder[account] -= amount;
        emit LogWithdrawal(msg.sender, account, amount);
        (bool sent, ) = payable(msg.sender).call{value: amount}("");
        require(sent, "auction: transfer failed");
        return true;
    }

    function cancelAuction() external returns (bool) {
        require(msg.sender == owner, "auction: caller is not the owner");
        require(block.number <= endBlock, "auction: ended");
        require(!canceled, "auction: canceled");
        canceled = true;
        emit LogCanceled();
        return true;
    }

    function min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
