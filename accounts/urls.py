from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("", views.account_overview, name="overview"),
    path("addresses/", views.address_list, name="address-list"),
    path("addresses/new/", views.address_create, name="address-create"),
    path("addresses/<int:address_id>/", views.address_update, name="address-update"),
    path("addresses/<int:address_id>/delete/", views.address_delete, name="address-delete"),
    path("addresses/<int:address_id>/default/", views.address_set_default, name="address-default"),
]
