"""tenantadm's blueprints: internal (`internal.py`) and management v1/v2 (`management.py`)."""
