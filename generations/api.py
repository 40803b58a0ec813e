from django.http import HttpRequest, JsonResponse

from generations.pricing import price_list
from seedance_site.api import api_view


@api_view(methods=("GET",), auth=False)
def pricing(request: HttpRequest) -> JsonResponse:
    return JsonResponse(price_list())
