//! conlink-config
