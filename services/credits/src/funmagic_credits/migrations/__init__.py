"""SQL migrations of the funmagic_credits database, applied in number order on start."""
