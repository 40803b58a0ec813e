"""Billing pages, the Stripe webhook and the checkout API call (see issue: Stripe top-ups)."""

from django.urls import path

from accounts import billing_api, billing_views

urlpatterns: list = [
    path("billing/", billing_views.billing, name="billing"),
    path("billing/checkout/", billing_views.billing_checkout, name="billing_checkout"),
    path("billing/success/", billing_views.billing_success, name="billing_success"),
    path("billing/cancel/", billing_views.billing_cancel, name="billing_cancel"),
    path("webhooks/stripe/", billing_views.stripe_webhook, name="stripe_webhook"),
    path("api/v1/checkout", billing_api.checkout, name="api_checkout"),
]
