from datetime import datetime

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from generations.reports import day_overview
from seedance_site.admin import OVERVIEW_PERMISSION, operator_view


@operator_view(OVERVIEW_PERMISSION)
def overview(request: HttpRequest) -> HttpResponse:
    day = request.GET.get("day")
    start = None
    if day:
        try:
            start = timezone.make_aware(datetime.strptime(day, "%Y-%m-%d"))
        except ValueError:
            start = None
    context = {**admin.site.each_context(request), "title": "Overview", "o": day_overview(start)}
    return render(request, "admin/overview.html", context)
