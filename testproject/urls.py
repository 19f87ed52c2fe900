"""URLs of the demo site: the blog, and the Django admin at ``/admin/``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("testproject.demo.urls")),
]
