"""SQL migrations of the funmagic_providers database, applied in number order on start."""
