"""URLs: list_items three ways (plus the fake-DB contract), compute and offload_table."""

from django.urls import path

from items import views

urlpatterns = [
    path("baseline/", views.baseline, name="baseline"),
    path("baseline_raw/", views.baseline_raw, name="baseline_raw"),
    path("baseline_fake/", views.baseline_fake, name="baseline_fake"),
    path("offload/", views.offload, name="offload"),
    path("compute/baseline/", views.compute_baseline, name="compute_baseline"),
    path("compute/offload/", views.compute_offload, name="compute_offload"),
    path("table/baseline/", views.table_baseline, name="table_baseline"),
    path("table/offload/", views.table_offload, name="table_offload"),
]
