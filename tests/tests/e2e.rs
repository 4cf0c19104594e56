//! The one integration-test binary; each area is a module so it links once.
