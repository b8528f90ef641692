"""HTTP routes, one ``APIRouter`` per module: images (upload and edge reads), restorations,
jobs, signed URLs, health and metrics."""
