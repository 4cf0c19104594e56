//! IPVS generic-netlink message encoding (below).
