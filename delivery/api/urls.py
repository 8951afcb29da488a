"""JSON API routes of delivery (under /api/v1/)."""

urlpatterns: list = []
