from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("orders/", views.order_list, name="list"),
    path("orders/<str:order_id>/", views.order_detail, name="detail"),
    path("orders/<str:order_id>/delivery-sheet/", views.delivery_sheet, name="delivery_sheet"),
    path("orders/<str:order_id>/unlock/", views.unlock, name="unlock_order"),
    path("orders/<str:order_id>/resend/", views.resend, name="resend"),
    path("unlock/<str:secret>/", views.unlock_with_link, name="unlock"),
]
