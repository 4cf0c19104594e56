//! The proxy datapath end to end (below).
