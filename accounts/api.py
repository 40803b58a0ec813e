from django.http import HttpRequest, JsonResponse

from seedance_site.api import api_view


@api_view(methods=("GET",))
def account(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"username": request.user.username, "balance_cents": request.user.balance_cents})
