"""Billing pages and the Stripe webhook; the checkout API call is accounts/billing/api.py, mounted
with the rest of the API."""

from django.urls import path

from accounts.billing import views

urlpatterns: list = [
    path("billing/", views.billing, name="billing"),
    path("billing/checkout/", views.billing_checkout, name="billing_checkout"),
    path("billing/success/", views.billing_success, name="billing_success"),
    path("billing/cancel/", views.billing_cancel, name="billing_cancel"),
    path("webhooks/stripe/", views.stripe_webhook, name="stripe_webhook"),
]
