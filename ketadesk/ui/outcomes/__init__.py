"""Check-ins and outcomes: dialogs for check-ins, questionnaires and home doses, and the charts."""
