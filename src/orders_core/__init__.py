"""Shared core of the order service: models, storage, cache, messaging and the services on top."""
