from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    # Every @admin.register lands on our site, which limits login attempts (seedance_site.admin).
    default_site = "seedance_site.admin.AdminSite"
