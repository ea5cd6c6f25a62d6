"""Prescriptions and Florida/New Jersey compliance: the chart tab, the checklist before issuing."""
