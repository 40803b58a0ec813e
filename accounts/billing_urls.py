"""Billing pages and the Stripe webhook (see issue: Stripe top-ups); the checkout API call is
accounts/billing_api.py, mounted with the rest of the API."""

from django.urls import path

from accounts import billing_views

urlpatterns: list = [
    path("billing/", billing_views.billing, name="billing"),
    path("billing/checkout/", billing_views.billing_checkout, name="billing_checkout"),
    path("billing/success/", billing_views.billing_success, name="billing_success"),
    path("billing/cancel/", billing_views.billing_cancel, name="billing_cancel"),
    path("webhooks/stripe/", billing_views.stripe_webhook, name="stripe_webhook"),
]
