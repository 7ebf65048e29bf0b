"""Delta sync for offline-first clients (GET /api/v1/sync): see service.py."""
