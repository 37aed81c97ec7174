"""The gateway service: the public HTTP edge and SSE."""
