"""Home visits: checking patients out to a visit pack, and the review of returned conflicts."""
