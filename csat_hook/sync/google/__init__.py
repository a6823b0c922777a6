"""The Google boundary: ``session`` (credentials, endpoints, timeouts, retries, counting) and
``api`` (the Sheets and Forms calls the sync makes)."""
