"""`nerctl serve`: the HTTP app and the request batcher."""
