"""Home visits offline: check patients out to a visit pack, return it, leases and conflicts."""
