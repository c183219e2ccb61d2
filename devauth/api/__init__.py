"""HTTP APIs of devauth: device, management and internal blueprints."""
