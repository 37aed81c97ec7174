"""SQL migrations of the funmagic_storage database, applied in number order on start."""
