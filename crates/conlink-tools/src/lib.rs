//! conlink-tools
