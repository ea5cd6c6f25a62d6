"""The roster screen, its table model, the CSV import wizard and the safety banner."""
