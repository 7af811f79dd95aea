//! conlink-runtime
