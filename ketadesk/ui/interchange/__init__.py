"""FHIR record export (one patient or all, with progress and cancel) and the FHIR import wizard."""
