//! conlink-net
pub mod nft;
