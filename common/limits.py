"""Paging limits shared by the API (common.pagination) and the services, which never import Flask."""

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 500
