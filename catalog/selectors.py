"""Reads from the catalog: the category tree, product listings, search and product pages.

Every function returns a queryset that already fetches what its page shows, so the number of
queries for a page does not grow with the number of products on it.
"""

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.core.cache import cache
from django.db import connections, router
from django.db.models import (
    Case,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.models import (
    Category,
    Product,
    ProductImage,
    ProductVariant,
    SaleCustomer,
    SaleHold,
    SaleItem,
)

SEARCH_CONFIG = "english"
SEARCH_MAX_TERMS = 8

# The public sort keys and what they mean; anything else falls back to the first.
PRODUCT_SORTS: dict[str, tuple[str, tuple]] = {
    "name": ("Name", ("name", "id")),
    "price": ("Price, low to high", ("price_from", "id")),
    "-price": ("Price, high to low", ("-price_from", "-id")),
    "newest": ("Newest", ("-created_at", "-id")),
}


@dataclass
class CategoryTree:
    """The active categories, read in one query, with their parent/child links."""

    categories: list[Category]
    by_id: dict[int, Category] = field(init=False)
    by_slug: dict[str, Category] = field(init=False)
    roots: list[Category] = field(init=False)

    def __post_init__(self) -> None:
        known = {category.pk: category for category in self.categories}
        for category in self.categories:
            category.tree_children = []
        self.roots = []
        for category in self.categories:
            if category.parent_id is None:
                self.roots.append(category)
            elif category.parent_id in known:
                known[category.parent_id].tree_children.append(category)
        # Only categories reachable from an active root are visible: a hidden parent hides its
        # whole branch.
        visible: dict[int, Category] = {}
        stack = list(self.roots)
        while stack:
            category = stack.pop()
            if category.pk in visible:
                continue
            visible[category.pk] = category
            stack.extend(category.tree_children)
        self.by_id = visible
        self.by_slug = {category.slug: category for category in visible.values()}

    def get(self, slug: str) -> Category | None:
        return self.by_slug.get(slug)

    def ancestors(self, category: Category) -> list[Category]:
        """Return the category's ancestors, root first (the category itself excluded)."""
        chain: list[Category] = []
        current = self.by_id.get(category.parent_id) if category.parent_id else None
        while current is not None and current not in chain:
            chain.append(current)
            current = self.by_id.get(current.parent_id) if current.parent_id else None
        return list(reversed(chain))

    def descendant_ids(self, category: Category) -> list[int]:
        """Return the ids of the category and of every category below it."""
        ids: list[int] = []
        stack = [category]
        while stack:
            current = stack.pop()
            if current.pk in ids:
                continue
            ids.append(current.pk)
            stack.extend(getattr(current, "tree_children", []))
        return ids


CATEGORY_TREE_CACHE_SECONDS = 300


def category_tree() -> CategoryTree:
    """Return the active categories linked into a tree: read once, then kept in the cache (every
    page's navigation shows it) until a merchant saves the catalog (`catalog_pages_forget`) or
    CATEGORY_TREE_CACHE_SECONDS pass."""
    key = "catalog:category-tree"
    cached = cache.get_many([_CATALOG_GENERATION_KEY, key])
    generation, entry = cached.get(_CATALOG_GENERATION_KEY), cached.get(key)
    if entry is not None and entry[0] == generation:
        return CategoryTree(entry[1])
    categories = list(
        Category.objects.filter(is_active=True)
        .only("id", "parent_id", "name", "slug", "description", "position")
        .order_by("position", "name")
    )
    cache.set(key, (generation, categories), CATEGORY_TREE_CACHE_SECONDS)
    return CategoryTree(categories)


def _first_image(column: str) -> Subquery:
    return Subquery(
        ProductImage.objects.filter(product=OuterRef("pk"))
        .order_by("position", "id")
        .values(column)[:1]
    )


def product_cards() -> QuerySet[Product]:
    """Return visible products with what a product card shows, in a single query."""
    in_stock = ProductVariant.objects.filter(product=OuterRef("pk"), is_active=True, stock__gt=0)
    return (
        Product.objects.filter(is_active=True, price_from__isnull=False)
        .only("id", "name", "slug", "brand", "price_from", "currency", "created_at")
        .annotate(
            in_stock=Exists(in_stock),
            card_image=_first_image("thumbnail"),
            card_image_alt=_first_image("alt_text"),
        )
    )


def product_list(
    *,
    category_ids: Iterable[int] | None = None,
    sort: str = "name",
    min_price: Decimal | None = None,
    max_price: Decimal | None = None,
    in_stock_only: bool = False,
) -> QuerySet[Product]:
    """Return visible products, filtered and sorted as a category page asks."""
    products = product_cards()
    if category_ids is not None:
        products = products.filter(category_id__in=list(category_ids))
    if min_price is not None:
        products = products.filter(price_from__gte=min_price)
    if max_price is not None:
        products = products.filter(price_from__lte=max_price)
    if in_stock_only:
        products = products.filter(in_stock=True)
    ordering = PRODUCT_SORTS.get(sort, PRODUCT_SORTS["name"])[1]
    return products.order_by(*ordering)


def product_list_featured(*, limit: int = 8) -> QuerySet[Product]:
    return product_cards().filter(is_featured=True).order_by("-created_at", "-id")[:limit]


def product_list_newest(*, limit: int = 8) -> QuerySet[Product]:
    return product_cards().order_by("-created_at", "-id")[:limit]


def product_search_vector() -> SearchVector:
    """Return the weighted document searched on PostgreSQL (name, then brand, then text).

    The GIN index made in migration 0002 is built on exactly this expression; a test checks
    that PostgreSQL's plan uses it.
    """
    return (
        SearchVector("name", weight="A", config=SEARCH_CONFIG)
        + SearchVector("brand", weight="B", config=SEARCH_CONFIG)
        + SearchVector("description", weight="C", config=SEARCH_CONFIG)
    )


def product_search(*, query: str) -> QuerySet[Product]:
    """Return visible products matching the query, best match first.

    PostgreSQL ranks with full-text search (web-search syntax: quotes, OR, -word); other
    databases fall back to matching every word in the name, brand or description.
    """
    products = product_cards()
    vendor = connections[router.db_for_read(Product)].vendor
    if vendor == "postgresql":
        search_query = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        vector = product_search_vector()
        return (
            products.annotate(document=vector)
            .filter(document=search_query)
            .annotate(rank=SearchRank(vector, search_query))
            .order_by("-rank", "name", "id")
        )
    terms = query.split()[:SEARCH_MAX_TERMS]
    if not terms:
        return products.none()
    for term in terms:
        products = products.filter(
            Q(name__icontains=term) | Q(brand__icontains=term) | Q(description__icontains=term)
        )
    return products.annotate(
        rank=Case(
            When(name__icontains=terms[0], then=Value(2)),
            When(brand__icontains=terms[0], then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by("-rank", "name", "id")


def product_get_for_page(*, slug: str) -> Product:
    """Return a visible product with its active variants and images (raises DoesNotExist)."""
    return (
        Product.objects.filter(is_active=True)
        .select_related("category")
        .prefetch_related(
            Prefetch(
                "variants",
                queryset=ProductVariant.objects.filter(is_active=True).order_by(
                    "position", F("price").asc(), "id"
                ),
                to_attr="active_variants",
            ),
            Prefetch("images", queryset=ProductImage.objects.order_by("position", "id")),
        )
        .get(slug=slug)
    )


def product_list_for_sitemap() -> QuerySet[Product]:
    return (
        Product.objects.filter(is_active=True, price_from__isnull=False)
        .only("slug", "updated_at")
        .order_by("id")
    )


# --- Sales -------------------------------------------------------------------------------------

UPCOMING_SALE_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class SaleOffer:
    """A variant's place in a sale, as read at `now`.

    `units_left` is the allotment minus the units in orders, plus the units of holds whose time
    has run out (they go back on sale at once, even before the order is cancelled), and never
    more than the variant's stock (plus those units) allows.
    """

    item_id: int
    sale_id: int
    sale_name: str
    variant_id: int
    sale_price: Decimal
    allotment: int
    units_left: int
    starts_at: datetime
    ends_at: datetime
    per_customer_limit: int | None
    hold_minutes: int
    now: datetime

    @property
    def is_live(self) -> bool:
        return self.starts_at <= self.now < self.ends_at

    @property
    def is_upcoming(self) -> bool:
        return self.now < self.starts_at

    @property
    def is_sold_out(self) -> bool:
        return self.units_left <= 0

    @property
    def state(self) -> str:
        """'upcoming', 'live' or 'sold-out' (a live sale with no unit left)."""
        if self.is_upcoming:
            return "upcoming"
        return "sold-out" if self.is_sold_out else "live"

    @property
    def seconds_to_start(self) -> int:
        return max(0, math.ceil((self.starts_at - self.now).total_seconds()))

    @property
    def seconds_to_end(self) -> int:
        return max(0, math.ceil((self.ends_at - self.now).total_seconds()))


def sale_offers(
    *, variant_ids: Iterable[int], now: datetime | None = None, live_only: bool = False
) -> dict[int, SaleOffer]:
    """Return each variant's sale offer, in one query: its live sale (the lowest price if sales
    overlap), else the next sale starting within UPCOMING_SALE_WINDOW (unless `live_only`)."""
    ids = list(variant_ids)
    if not ids:
        return {}
    now = now or timezone.now()
    horizon = now if live_only else now + UPCOMING_SALE_WINDOW
    expired_held = (
        SaleHold.objects.filter(
            sale_item=OuterRef("pk"), status=SaleHold.Status.HELD, expires_at__lte=now
        )
        .values("sale_item")
        .annotate(units=Sum("quantity"))
        .values("units")
    )
    items = (
        SaleItem.objects.filter(
            variant_id__in=ids,
            sale__is_active=True,
            sale__ends_at__gt=now,
            sale__starts_at__lte=horizon,
        )
        .annotate(
            expired_held=Coalesce(Subquery(expired_held), 0),
            variant_stock=F("variant__stock"),
        )
        .values_list(
            "pk",
            "sale_id",
            "sale__name",
            "variant_id",
            "sale_price",
            "allotment",
            "taken",
            "expired_held",
            "variant_stock",
            "sale__starts_at",
            "sale__ends_at",
            "sale__per_customer_limit",
            "sale__hold_minutes",
        )  # fmt: skip
        .order_by("sale__starts_at", "sale_price", "pk")
    )
    offers: dict[int, SaleOffer] = {}
    for (
        pk, sale_id, name, variant_id, price, allotment, taken, expired, stock, starts_at,
        ends_at, limit, hold_minutes,
    ) in items:  # fmt: skip
        left = min(allotment - taken + expired, stock + expired)
        offer = SaleOffer(
            item_id=pk, sale_id=sale_id, sale_name=name, variant_id=variant_id,
            sale_price=price, allotment=allotment, units_left=max(0, left),
            starts_at=starts_at, ends_at=ends_at, per_customer_limit=limit,
            hold_minutes=hold_minutes, now=now,
        )  # fmt: skip
        current = offers.get(variant_id)
        if current is None or _sale_offer_better(offer, current):
            offers[variant_id] = offer
    return offers


def _sale_offer_better(offer: SaleOffer, current: SaleOffer) -> bool:
    """A live offer beats an upcoming one; of two live ones, the lower price (a merchant's
    overlapping sales never charge the customer more); of upcoming ones, the first to start."""
    if offer.is_live != current.is_live:
        return offer.is_live
    return offer.is_live and offer.sale_price < current.sale_price


def sale_customer_key(*, user_id: int | None, email: str) -> str:
    """Who a per-customer limit counts: a signed-in customer by account, a guest by email."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"email:{(email or '').strip().lower()}"


def sale_customer_units(*, sale_ids: Iterable[int], customer_key: str) -> dict[int, int]:
    """Return the units this customer holds or bought in each of these sales."""
    return dict(
        SaleCustomer.objects.filter(
            sale_id__in=list(sale_ids), customer_key=customer_key
        ).values_list("sale_id", "units")
    )


# --- Sales on the shop's pages -------------------------------------------------------------------
#
# What the pages show of a sale is worked out from the window at the moment of the request, so a
# sale starts and ends on the second. The cart and checkout recompute every price on the server;
# the caches below only affect what a page displays.

PRODUCT_PAGE_CACHE_SECONDS = 300
SALE_LIVE_CACHE_SECONDS = 1.0
_CATALOG_GENERATION_KEY = "catalog:generation"


def product_cards_with_sale(products: QuerySet[Product], *, now: datetime | None = None):
    """Add `sale_price` to product cards: the lowest price of a live sale on one of the
    product's active variants in stock with units left, else None. A subquery in the cards'
    own query, so a page of cards costs no extra query."""
    now = now or timezone.now()
    live = (
        SaleItem.objects.filter(
            variant__product=OuterRef("pk"),
            variant__is_active=True,
            variant__stock__gt=0,
            taken__lt=F("allotment"),
            sale__is_active=True,
            sale__starts_at__lte=now,
            sale__ends_at__gt=now,
        )
        .order_by("sale_price")
        .values("sale_price")[:1]
    )
    return products.annotate(sale_price=Subquery(live))


def catalog_pages_forget() -> None:
    """Drop every cached product page (a merchant changed the catalog): the next view of each
    reads it again. Called by the back office after any catalog save."""
    cache.set(_CATALOG_GENERATION_KEY, timezone.now().timestamp(), None)


@dataclass
class ProductPage:
    """What a product page shows: the product with its category, active variants (their stock
    fresh to about a second) and images, and each variant's sale offer."""

    product: Product
    variants: list[ProductVariant]
    images: list[ProductImage]
    offers: dict[int, SaleOffer]


def _sale_live_until(offers: dict[int, SaleOffer], now: datetime) -> datetime:
    """Cache sale data for at most SALE_LIVE_CACHE_SECONDS, and never past the next start or
    end among the offers: a sale's price appears and goes on the second."""
    until = now + timedelta(seconds=SALE_LIVE_CACHE_SECONDS)
    for offer in offers.values():
        for moment in (offer.starts_at, offer.ends_at):
            if now < moment < until:
                until = moment
    return until


def product_page(*, slug: str, now: datetime | None = None) -> ProductPage:
    """Return a visible product's page data (raises Product.DoesNotExist).

    Two cache entries, both read in one round trip:
    - the catalog data (product, category, variants, images), kept PRODUCT_PAGE_CACHE_SECONDS
      and dropped by `catalog_pages_forget` when a merchant saves the catalog;
    - the fast-changing part (each variant's stock and sale offers), kept about a second and
      never past a sale's start or end, then read again (the offers' `now` is the request's).
    A cold page costs the queries of `product_get_for_page` plus one for the offers; a warm one
    none (or two, stock and offers, once its second has passed).
    """
    now = now or timezone.now()
    page_key, live_key = f"catalog:product-page:{slug}", f"catalog:product-live:{slug}"
    cached = cache.get_many([_CATALOG_GENERATION_KEY, page_key, live_key])
    generation = cached.get(_CATALOG_GENERATION_KEY)
    page = cached.get(page_key)
    live = cached.get(live_key)
    fresh_stock = None
    if page is None or page["generation"] != generation:
        product = product_get_for_page(slug=slug)
        page = {
            "generation": generation,
            "product": product,
            "variants": list(product.active_variants),
            "images": list(product.images.all()),
        }
        cache.set(page_key, page, PRODUCT_PAGE_CACHE_SECONDS)
        fresh_stock = {variant.pk: variant.stock for variant in page["variants"]}
        live = None  # the variants may have changed: read their offers again
    variants: list[ProductVariant] = page["variants"]
    ids = [variant.pk for variant in variants]
    if live is None or live["ids"] != ids or not (live["read_at"] <= now < live["until"]):
        if fresh_stock is None:
            fresh_stock = dict(ProductVariant.objects.filter(pk__in=ids).values_list("pk", "stock"))
        offers = sale_offers(variant_ids=ids, now=now)
        live = {
            "ids": ids,
            "stock": fresh_stock,
            "offers": offers,
            "read_at": now,
            "until": _sale_live_until(offers, now),
        }
        cache.set(live_key, live, math.ceil(SALE_LIVE_CACHE_SECONDS) + 1)
    for variant in variants:
        variant.stock = live["stock"].get(variant.pk, 0)
    offers = {
        variant_id: dataclasses.replace(offer, now=now)
        for variant_id, offer in live["offers"].items()
        if now < offer.ends_at
    }
    product = page["product"]
    product.active_variants = variants
    return ProductPage(product=product, variants=variants, images=page["images"], offers=offers)
