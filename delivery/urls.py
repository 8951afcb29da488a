"""Non-API routes of delivery: tracking and the demo storefront."""

urlpatterns: list = []
