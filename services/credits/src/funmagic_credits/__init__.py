"""The credits service: the event-sourced credits ledger and commerce."""
