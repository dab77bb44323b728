"""The category tree for the site's navigation, read at most once per request."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from catalog.selectors import CategoryTree, category_tree


def category_tree_for_request(request: HttpRequest) -> CategoryTree:
    """Return the request's category tree, reading it on first use only."""
    tree = getattr(request, "_category_tree", None)
    if tree is None:
        tree = category_tree()
        request._category_tree = tree
    return tree


def catalog(request: HttpRequest) -> dict:
    return {"category_tree": SimpleLazyObject(lambda: category_tree_for_request(request))}
