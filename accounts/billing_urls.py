"""Billing pages, the Stripe webhook and the checkout API call (see issue: Stripe top-ups)."""

urlpatterns: list = []
