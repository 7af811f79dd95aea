//! conlink-net
