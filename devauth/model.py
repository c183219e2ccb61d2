"""Status names shared by the devauth service modules."""

PENDING, ACCEPTED, REJECTED, PREAUTHORIZED, NOAUTH = "pending", "accepted", "rejected", "preauthorized", "noauth"
AUTH_SET_STATUSES = (PENDING, ACCEPTED, REJECTED, PREAUTHORIZED)
DEVICE_STATUSES = (PENDING, ACCEPTED, REJECTED, PREAUTHORIZED, NOAUTH)
