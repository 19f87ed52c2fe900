"""URLs for views under test; test modules override ROOT_URLCONF to point here."""

urlpatterns: list[object] = []
