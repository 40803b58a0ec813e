from datetime import datetime

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from generations.reports import day_overview


@staff_member_required
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
