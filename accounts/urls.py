from django.contrib.auth import views as auth_views
from django.urls import path

from accounts import views

urlpatterns = [
    path("", views.account, name="account"),
    path("signup/", views.signup, name="signup"),
    path("signup/done/", views.signup_done, name="signup_done"),
    path("verify/<uidb64>/<token>/", views.verify_email, name="verify_email"),
    path("verify/resend/", views.verify_email_resend, name="verify_email_resend"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("sign_out_everywhere/", views.sign_out_everywhere, name="sign_out_everywhere"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="token_revoke"),
    path("spend-limit/", views.spend_limit_update, name="spend_limit_update"),
    path("notifications/", views.email_preferences_update, name="email_preferences_update"),
    path("webhooks/rotate/", views.webhook_secret_rotate_view, name="webhook_secret_rotate"),
    path(
        "webhooks/deliveries/<int:delivery_id>/resend/",
        views.webhook_delivery_resend_view,
        name="webhook_delivery_resend",
    ),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password_reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password_reset/done/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
