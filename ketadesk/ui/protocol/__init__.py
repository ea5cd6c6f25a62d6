"""The protocol editor (form, calendar, sign panel, history) and the template manager."""
