"""Shared plumbing: config, app factory, errors, storage backends, auth layer, HTTP helpers."""
