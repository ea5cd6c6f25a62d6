"""Exporting and previewing treatment-plan PDFs."""
