"""useradm HTTP APIs: management v1/v2 and internal."""
