"""Framework glue. Each integration only translates requests and responses; the shared
translation (which response a decision becomes) lives in :mod:`.http`."""
