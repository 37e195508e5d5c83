"""Adapters: storage backends and identity providers."""
