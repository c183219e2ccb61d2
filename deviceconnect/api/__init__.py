"""deviceconnect's HTTP API (the websocket endpoints are in deviceconnect.relay)."""
