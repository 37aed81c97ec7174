"""SQL migrations of the funmagic_tasks database, applied in number order on start."""
