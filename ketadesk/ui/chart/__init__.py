"""One patient's chart and its tabs (demographics, medications, conditions, vitals)."""
