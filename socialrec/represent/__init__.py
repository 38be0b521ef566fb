"""represent."""
