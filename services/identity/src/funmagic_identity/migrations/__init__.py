"""SQL migrations of the funmagic_identity database, applied in number order on start."""
