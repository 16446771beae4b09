"""JSON API routes (/api/)."""

urlpatterns: list = []
