"""Demo data: a realistic, repeatable catalog and a merchant account for trying the shop.

Invariants owned here:
- Demo data is never written in production (`settings.IS_PRODUCTION`): the merchant account has a
  published password.
- Generation is deterministic: product number n with seed s always has the same name, slug,
  brand, variants, prices and pictures, whatever the other products, the process or the machine.
- Seeding is idempotent: a product is identified by its slug (`<name-slug>-<n>`), a category by
  its slug and the merchant by email; what exists is kept as it is and only what is missing is
  created.
- Product pictures are a small shared set of placeholder files under `demo/` in the media
  storage, written once; image rows point at them.
- `Product.price_from` is set by `catalog.services.product_refresh_price_from`, as everywhere.
"""

import functools
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from io import BytesIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image, ImageDraw, ImageFont

from catalog.exceptions import CatalogError
from catalog.models import Category, Product, ProductImage, ProductVariant, Sale, SaleItem
from catalog.services import THUMBNAIL_SIZE, product_refresh_price_from

DEFAULT_SEED = 2026
MAX_SEED = 999_999  # The seed is part of every SKU, which has at most 64 characters.
MERCHANT_EMAIL = "merchant@example.com"
MERCHANT_GROUP = "Merchants"
# The merchant group gets every permission of these apps, read when seeding so that models added
# later are included.
MERCHANT_APP_LABELS = ("catalog", "orders", "payments")

# Products are written this many at a time: one INSERT each for products, variants and images,
# then one UPDATE for their prices.
CHUNK_SIZE = 1000
PICTURES_PER_CATEGORY = 3
PICTURE_SIZE = (960, 720)
PICTURE_DIRECTORY = "demo"


class DemoSeedError(CatalogError):
    """Demo data could not be written."""


class DemoSeedRefused(DemoSeedError):
    """Demo data is refused here (in production)."""


# --- The catalog's shape -----------------------------------------------------------------------

SIZES = ("XS", "S", "M", "L", "XL", "XXL")
SHOE_SIZES = tuple(f"EU {size}" for size in range(38, 47))
COLOURS = (
    "Black",
    "White",
    "Navy",
    "Olive",
    "Rust",
    "Sand",
    "Forest Green",
    "Slate",
    "Burgundy",
    "Sky Blue",
    "Charcoal",
    "Ochre",
)


@dataclass(frozen=True)
class DemoSubcategory:
    """A subcategory products are filed in, and how its products are named, varied and priced."""

    name: str
    slug: str
    code: str  # Starts every SKU.
    nouns: tuple[str, ...]
    materials: tuple[str, ...]
    options: dict[str, tuple[str, ...]]
    prices: tuple[int, int]  # Lowest and highest base price, whole units.
    # Added to the price for each step along the first option (bigger tent, bigger bed).
    price_step: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class DemoCategory:
    name: str
    slug: str
    description: str
    features: tuple[str, ...]  # Finish "Made from <material>, with <feature>."
    children: tuple[DemoSubcategory, ...]


APPAREL = {"size": SIZES, "colour": COLOURS}
FOOTWEAR = {"size": SHOE_SIZES, "colour": COLOURS}

DEMO_CATEGORIES: tuple[DemoCategory, ...] = (
    DemoCategory(
        name="Clothing",
        slug="clothing",
        description="Layers for town and trail, made to last more than a season.",
        features=(
            "flat-locked seams that do not rub under a pack",
            "a relaxed fit with room to layer",
            "reinforced shoulders and cuffs",
            "a cut that moves with you",
        ),
        children=(
            DemoSubcategory(
                name="T-shirts & tops",
                slug="t-shirts-tops",
                code="TOP",
                nouns=("Tee", "T-Shirt", "Henley", "Polo", "Long-Sleeve Top"),
                materials=("Merino", "Organic Cotton", "Linen", "Hemp"),
                options=APPAREL,
                prices=(15, 45),
            ),
            DemoSubcategory(
                name="Jackets",
                slug="jackets",
                code="JKT",
                nouns=("Jacket", "Shell", "Parka", "Anorak", "Gilet"),
                materials=("Waxed Cotton", "Recycled Nylon", "Down", "Softshell", "Wool"),
                options=APPAREL,
                prices=(60, 280),
            ),
            DemoSubcategory(
                name="Trousers & shorts",
                slug="trousers-shorts",
                code="TRS",
                nouns=("Trousers", "Chinos", "Hiking Pants", "Joggers", "Shorts"),
                materials=("Organic Cotton", "Ripstop", "Linen", "Stretch Twill", "Corduroy"),
                options=APPAREL,
                prices=(35, 120),
            ),
            DemoSubcategory(
                name="Knitwear",
                slug="knitwear",
                code="KNT",
                nouns=("Jumper", "Cardigan", "Hoodie", "Sweater", "Roll Neck"),
                materials=("Merino", "Lambswool", "Cashmere", "Recycled Fleece"),
                options=APPAREL,
                prices=(40, 150),
            ),
        ),
    ),
    DemoCategory(
        name="Shoes",
        slug="shoes",
        description="Footwear for running, walking and everything in between.",
        features=(
            "a grippy rubber outsole",
            "a removable cushioned insole",
            "a waterproof membrane",
            "a wide toe box",
        ),
        children=(
            DemoSubcategory(
                name="Running shoes",
                slug="running-shoes",
                code="RUN",
                nouns=("Running Shoe", "Trail Runner", "Racer", "Road Trainer"),
                materials=("Recycled Mesh", "Engineered Knit", "Ripstop"),
                options=FOOTWEAR,
                prices=(70, 180),
            ),
            DemoSubcategory(
                name="Hiking boots",
                slug="hiking-boots",
                code="BOT",
                nouns=("Hiking Boot", "Mid Boot", "Approach Shoe", "Mountain Boot"),
                materials=("Leather", "Nubuck", "Suede"),
                options=FOOTWEAR,
                prices=(90, 240),
            ),
            DemoSubcategory(
                name="Sneakers",
                slug="sneakers",
                code="SNK",
                nouns=("Sneaker", "Low-Top", "High-Top", "Slip-On"),
                materials=("Canvas", "Leather", "Suede", "Recycled Mesh"),
                options=FOOTWEAR,
                prices=(50, 130),
            ),
        ),
    ),
    DemoCategory(
        name="Outdoor",
        slug="outdoor",
        description="Shelter, packs and sleep systems for nights under the sky.",
        features=(
            "taped seams",
            "a packed weight you will hardly notice",
            "a lifetime repair promise",
            "smooth-running zips throughout",
        ),
        children=(
            DemoSubcategory(
                name="Tents",
                slug="tents",
                code="TNT",
                nouns=("Tent", "Dome Tent", "Tunnel Tent", "Tarp Shelter"),
                materials=("Ripstop", "Silnylon", "Canvas", "Polycotton"),
                options={"capacity": ("1 person", "2 person", "3 person", "4 person")},
                prices=(90, 600),
                price_step=Decimal("40.00"),
            ),
            DemoSubcategory(
                name="Backpacks",
                slug="backpacks",
                code="BPK",
                nouns=("Backpack", "Daypack", "Rucksack", "Trekking Pack"),
                materials=("Recycled Nylon", "Waxed Canvas", "Ripstop"),
                options={"volume": ("18 L", "25 L", "35 L", "50 L", "65 L"), "colour": COLOURS},
                prices=(40, 260),
                price_step=Decimal("15.00"),
            ),
            DemoSubcategory(
                name="Sleeping bags",
                slug="sleeping-bags",
                code="SLP",
                nouns=("Sleeping Bag", "Quilt", "Mummy Bag"),
                materials=("Down", "Recycled Down", "Synthetic"),
                options={"length": ("Regular", "Long"), "zip": ("Left", "Right")},
                prices=(60, 350),
                price_step=Decimal("20.00"),
            ),
        ),
    ),
    DemoCategory(
        name="Home",
        slug="home",
        description="Things for the kitchen, the bedroom and long evenings in.",
        features=(
            "a finish that ages well",
            "hand finishing by a small workshop",
            "a design that has not changed in decades",
            "materials from responsible sources",
        ),
        children=(
            DemoSubcategory(
                name="Kitchen",
                slug="kitchen",
                code="KIT",
                nouns=("Mug", "Teapot", "Serving Bowl", "Chopping Board", "Coffee Press"),
                materials=("Stoneware", "Enamel", "Porcelain", "Oak"),
                options={"colour": COLOURS},
                prices=(12, 90),
            ),
            DemoSubcategory(
                name="Bedding",
                slug="bedding",
                code="BED",
                nouns=("Duvet Cover", "Pillowcase Set", "Throw", "Fitted Sheet"),
                materials=("Washed Linen", "Organic Cotton", "Percale", "Wool"),
                options={"size": ("Single", "Double", "King", "Super King"), "colour": COLOURS},
                prices=(25, 150),
                price_step=Decimal("10.00"),
            ),
            DemoSubcategory(
                name="Lighting",
                slug="lighting",
                code="LGT",
                nouns=("Table Lamp", "Floor Lamp", "Pendant Light", "Lantern"),
                materials=("Brass", "Oak", "Ceramic", "Rattan", "Glass"),
                options={"finish": ("Brass", "Matt Black", "White", "Natural Oak")},
                prices=(30, 260),
            ),
        ),
    ),
    DemoCategory(
        name="Accessories",
        slug="accessories",
        description="Bags, hats and bottles that go everywhere you do.",
        features=(
            "a lifetime guarantee",
            "details that will not wear through",
            "a loop to clip it to a pack",
            "a size that packs small",
        ),
        children=(
            DemoSubcategory(
                name="Bags",
                slug="bags",
                code="BAG",
                nouns=("Tote", "Messenger Bag", "Duffel", "Hip Pack"),
                materials=("Waxed Canvas", "Leather", "Recycled Nylon", "Cork"),
                options={"colour": COLOURS},
                prices=(25, 160),
            ),
            DemoSubcategory(
                name="Hats & gloves",
                slug="hats-gloves",
                code="HAT",
                nouns=("Beanie", "Cap", "Bucket Hat", "Gloves", "Mittens"),
                materials=("Wool", "Merino", "Organic Cotton", "Fleece"),
                options={"size": ("S", "M", "L"), "colour": COLOURS},
                prices=(15, 55),
            ),
            DemoSubcategory(
                name="Bottles & flasks",
                slug="bottles-flasks",
                code="BTL",
                nouns=("Water Bottle", "Flask", "Travel Mug"),
                materials=("Stainless Steel", "Insulated Steel", "Glass", "Enamel"),
                options={"volume": ("350 ml", "500 ml", "750 ml", "1 L"), "colour": COLOURS},
                prices=(15, 50),
                price_step=Decimal("3.00"),
            ),
        ),
    ),
    DemoCategory(
        name="Sports",
        slug="sports",
        description="Kit for the bike, the mat and the pool.",
        features=(
            "a quick-drying finish",
            "reflective details",
            "a shape tested by coaches",
            "a fit that stays put",
        ),
        children=(
            DemoSubcategory(
                name="Cycling",
                slug="cycling",
                code="CYC",
                nouns=("Cycling Jersey", "Bib Shorts", "Cycling Gilet", "Arm Warmers"),
                materials=("Merino", "Recycled Polyester", "Softshell"),
                options=APPAREL,
                prices=(20, 160),
            ),
            DemoSubcategory(
                name="Yoga",
                slug="yoga",
                code="YGA",
                nouns=("Yoga Mat", "Yoga Block", "Yoga Strap", "Bolster"),
                materials=("Natural Rubber", "Cork", "Organic Cotton", "Recycled Foam"),
                options={"colour": COLOURS},
                prices=(10, 90),
            ),
            DemoSubcategory(
                name="Swimming",
                slug="swimming",
                code="SWM",
                nouns=("Swimsuit", "Swim Shorts", "Swim Cap", "Changing Robe"),
                materials=("Recycled Nylon", "Polyester", "Terry Cotton"),
                options=APPAREL,
                prices=(15, 70),
            ),
        ),
    ),
)

BRANDS = (
    "Northwind",
    "Fjellkraft",
    "Harbour & Pine",
    "Kestrel",
    "Tidewater",
    "Larchmont",
    "Ridgeline",
    "Old Quarry",
    "Bramble",
    "Saltmarsh",
    "Copperfield",
    "Wildfell",
    "Ashgrove",
    "Hollow Oak",
    "Cairn & Co.",
    "Skerry",
)
ADJECTIVES = (
    "Alpine",
    "Coastal",
    "Everyday",
    "Summit",
    "Urban",
    "Trail",
    "Classic",
    "Lightweight",
    "Heritage",
    "Nordic",
    "Highland",
    "Harbour",
    "Weekend",
    "Expedition",
    "Meadow",
    "Storm",
)
CLAIMS = (
    "built for long days outdoors",
    "made to be used season after season",
    "designed in small batches and tested in the hills",
    "a quiet favourite of our staff",
    "simple, sturdy and easy to care for",
    "the one we reach for first",
)
CLOSINGS = (
    "Ships in recycled packaging.",
    "Backed by a two-year guarantee.",
    "Repairs are free for the first year.",
    "Made in a factory we visit every year.",
    "Returns are free within 30 days.",
)

# Shares of generated data, chosen to give the shop's pages something to show.
VARIANT_COUNT_WEIGHTS = {1: 30, 2: 25, 3: 25, 4: 20}
OUT_OF_STOCK_SHARE = 0.15
INACTIVE_VARIANT_SHARE = 0.05  # Never the first variant: every product stays on sale.
FEATURED_SHARE = 0.06
MARKED_DOWN_SHARE = 0.1  # End-of-line variants: a fifth off, the price ending in .99.
CENTS = ("0.00", "0.50", "0.95", "0.99")


# --- Generation (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoPicture:
    name: str
    thumbnail: str
    width: int
    height: int


@dataclass(frozen=True)
class DemoVariantSpec:
    sku: str
    options: dict[str, str]
    price: Decimal
    stock: int
    is_active: bool


@dataclass(frozen=True)
class DemoProductSpec:
    number: int
    name: str
    slug: str
    brand: str
    description: str
    category_slug: str
    is_featured: bool
    variants: tuple[DemoVariantSpec, ...]
    pictures: tuple[DemoPicture, ...]


def _pictures_of(category: DemoCategory) -> tuple[DemoPicture, ...]:
    return tuple(
        DemoPicture(
            name=f"{PICTURE_DIRECTORY}/{category.slug}-{index}.jpg",
            thumbnail=f"{PICTURE_DIRECTORY}/thumbs/{category.slug}-{index}.jpg",
            width=PICTURE_SIZE[0],
            height=PICTURE_SIZE[1],
        )
        for index in range(1, PICTURES_PER_CATEGORY + 1)
    )


# The shared placeholder pictures of each top-level category, by its slug.
DEMO_PICTURES: dict[str, tuple[DemoPicture, ...]] = {
    category.slug: _pictures_of(category) for category in DEMO_CATEGORIES
}
_LEAVES: tuple[tuple[DemoCategory, DemoSubcategory], ...] = tuple(
    (category, child) for category in DEMO_CATEGORIES for child in category.children
)
# Every combination of option value indexes of each subcategory, by its slug.
_COMBINATIONS: dict[str, list[tuple[int, ...]]] = {
    leaf.slug: list(itertools.product(*(range(len(values)) for values in leaf.options.values())))
    for _, leaf in _LEAVES
}
_VARIANT_COUNTS, _VARIANT_COUNT_WEIGHTS = zip(*VARIANT_COUNT_WEIGHTS.items(), strict=True)


@functools.cache
def _slug(text: str) -> str:
    return slugify(text)


def demo_product_generate(*, number: int, seed: int = DEFAULT_SEED) -> DemoProductSpec:
    """Return demo product number `number` (from 1) for `seed`; the same on every call."""
    # A generator per product, seeded from a string (hashed with SHA-512, not with `hash()`), so
    # a product never depends on the products before it, on the process or on the platform.
    rng = random.Random(f"catalog-demo:{seed}:{number}")
    category, leaf = rng.choice(_LEAVES)
    brand = rng.choice(BRANDS)
    material = rng.choice(leaf.materials)
    name = f"{rng.choice(ADJECTIVES)} {material} {rng.choice(leaf.nouns)}"
    description = " ".join(
        (
            f"{name} by {brand}: {rng.choice(CLAIMS)}.",
            f"Made from {material.lower()}, with {rng.choice(category.features)}.",
            rng.choice(CLOSINGS),
        )
    )

    option_names = list(leaf.options)
    combinations = _COMBINATIONS[leaf.slug]
    wanted = rng.choices(_VARIANT_COUNTS, weights=_VARIANT_COUNT_WEIGHTS)[0]
    chosen = sorted(rng.sample(combinations, min(wanted, len(combinations))))
    base_price = Decimal(rng.randint(*leaf.prices)) + Decimal(rng.choice(CENTS))
    variants = []
    for position, indexes in enumerate(chosen):
        options = {
            option: leaf.options[option][index]
            for option, index in zip(option_names, indexes, strict=True)
        }
        suffix = "-".join(_slug(value).upper() for value in options.values())
        price = base_price + leaf.price_step * indexes[0]
        if rng.random() < MARKED_DOWN_SHARE:
            price = (price * Decimal("0.8")).to_integral_value(ROUND_DOWN) + Decimal("0.99")
        in_stock = rng.random() >= OUT_OF_STOCK_SHARE
        variants.append(
            DemoVariantSpec(
                sku=f"{leaf.code}-{seed}-{number:05d}-{suffix}",
                options=options,
                price=price.quantize(Decimal("0.01")),
                stock=rng.randint(1, 120) if in_stock else 0,
                is_active=position == 0 or rng.random() >= INACTIVE_VARIANT_SHARE,
            )
        )

    pictures = DEMO_PICTURES[category.slug]
    picture_count = rng.randint(1, len(pictures))
    return DemoProductSpec(
        number=number,
        name=name,
        slug=f"{_slug(name)}-{number}",
        brand=brand,
        description=description,
        category_slug=leaf.slug,
        is_featured=rng.random() < FEATURED_SHARE,
        variants=tuple(variants),
        pictures=tuple(rng.sample(pictures, picture_count)),
    )


def demo_products_generate(*, count: int, seed: int = DEFAULT_SEED) -> list[DemoProductSpec]:
    """Return demo products 1 to `count` for `seed`."""
    return [demo_product_generate(number=number, seed=seed) for number in range(1, count + 1)]


# --- Writing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSeedResult:
    products: int  # Demo products asked for, new or already there.
    products_created: int
    variants: int  # Variants of those products.
    variants_created: int
    images_created: int
    categories: int
    categories_created: int
    pictures_written: int
    seconds: float
    dry_run: bool


@dataclass(frozen=True)
class DemoMerchantResult:
    email: str
    created: bool
    # Whether the account's password is the one given (it is left alone on an existing account).
    has_given_password: bool
    permissions: int
    dry_run: bool


def demo_seeding_check() -> None:
    """Refuse demo data in production: raise DemoSeedRefused there."""
    if settings.IS_PRODUCTION:
        raise DemoSeedRefused(
            "Demo data is refused in production (DJANGO_ENV=production): it includes an account "
            "with a published password. Nothing was written."
        )


def _picture_draw(category: DemoCategory, index: int) -> Image.Image:
    """Draw one placeholder: a coloured background, a simple shape and the category's name."""
    hue = (DEMO_CATEGORIES.index(category) * 60 + index * 17) % 360
    background = f"hsl({hue}, 45%, 78%)"
    accent = f"hsl({(hue + 150) % 360}, 55%, 45%)"
    ink = f"hsl({hue}, 40%, 22%)"
    picture = Image.new("RGB", PICTURE_SIZE, background)
    draw = ImageDraw.Draw(picture)
    width, height = PICTURE_SIZE
    centre_x, centre_y, radius = width // 2, height // 2 - 40, 190
    box = (centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius)
    if index % 3 == 1:
        draw.ellipse(box, fill=accent)
    elif index % 3 == 2:
        draw.rounded_rectangle(box, radius=40, fill=accent)
    else:
        draw.polygon(
            [
                (centre_x, centre_y - radius),
                (centre_x + radius, centre_y + radius),
                (centre_x - radius, centre_y + radius),
            ],
            fill=accent,
        )
    title = ImageFont.load_default(size=72)
    caption = ImageFont.load_default(size=32)
    draw.text((centre_x, height - 150), category.name, font=title, fill=ink, anchor="mm")
    draw.text((centre_x, height - 80), "Demo picture", font=caption, fill=ink, anchor="mm")
    return picture


def _jpeg(picture: Image.Image) -> ContentFile:
    buffer = BytesIO()
    picture.save(buffer, format="JPEG", quality=85, optimize=True)
    return ContentFile(buffer.getvalue())


def demo_pictures_ensure() -> int:
    """Write the placeholder pictures and thumbnails that are missing; return how many."""
    demo_seeding_check()
    written = 0
    for category in DEMO_CATEGORIES:
        for index, demo_picture in enumerate(DEMO_PICTURES[category.slug], start=1):
            if default_storage.exists(demo_picture.name) and default_storage.exists(
                demo_picture.thumbnail
            ):
                continue
            picture = _picture_draw(category, index)
            thumbnail = picture.copy()
            thumbnail.thumbnail(THUMBNAIL_SIZE)
            for name, image in ((demo_picture.name, picture), (demo_picture.thumbnail, thumbnail)):
                if default_storage.exists(name):
                    default_storage.delete(name)
                saved_as = default_storage.save(name, _jpeg(image))
                if saved_as != name:
                    raise DemoSeedError(f"The storage saved {name} as {saved_as}.")
            written += 1
    return written


def _slugs_existing(slugs: Sequence[str]) -> set[str]:
    existing: set[str] = set()
    for chunk in itertools.batched(slugs, CHUNK_SIZE):
        existing.update(Product.objects.filter(slug__in=chunk).values_list("slug", flat=True))
    return existing


def _categories_ensure() -> tuple[dict[str, int], int]:
    """Create the demo categories that are missing; return leaf ids by slug and how many new."""
    leaf_ids: dict[str, int] = {}
    created_count = 0
    for position, category in enumerate(DEMO_CATEGORIES):
        parent, created = Category.objects.get_or_create(
            slug=category.slug,
            defaults={
                "name": category.name,
                "description": category.description,
                "position": position,
            },
        )
        created_count += created
        for child_position, child in enumerate(category.children):
            leaf, created = Category.objects.get_or_create(
                slug=child.slug,
                defaults={"name": child.name, "parent": parent, "position": child_position},
            )
            created_count += created
            leaf_ids[child.slug] = leaf.pk
    return leaf_ids, created_count


def _products_create(specs: Sequence[DemoProductSpec], category_ids: dict[str, int]) -> int:
    """Write products with their variants and images; return how many images were written."""
    products = Product.objects.bulk_create(
        [
            Product(
                category_id=category_ids[spec.category_slug],
                name=spec.name,
                slug=spec.slug,
                brand=spec.brand,
                description=spec.description,
                is_featured=spec.is_featured,
            )
            for spec in specs
        ],
        batch_size=CHUNK_SIZE,
    )
    variants = []
    images = []
    for product, spec in zip(products, specs, strict=True):
        variants.extend(
            ProductVariant(
                product_id=product.pk,
                sku=variant.sku,
                options=variant.options,
                price=variant.price,
                stock=variant.stock,
                stock_received=variant.stock,  # bulk_create skips save(): the opening receipt
                is_active=variant.is_active,
                position=position,
            )
            for position, variant in enumerate(spec.variants)
        )
        # Dimensions are given, so the image field never opens the shared file.
        images.extend(
            ProductImage(
                product_id=product.pk,
                image=picture.name,
                width=picture.width,
                height=picture.height,
                thumbnail=picture.thumbnail,
                alt_text=f"{spec.name}, picture {position + 1}",
                position=position,
            )
            for position, picture in enumerate(spec.pictures)
        )
    ProductVariant.objects.bulk_create(variants, batch_size=CHUNK_SIZE)
    ProductImage.objects.bulk_create(images, batch_size=CHUNK_SIZE)
    product_refresh_price_from(product_ids=[product.pk for product in products])
    return len(images)


def demo_catalog_seed(
    *, products: int, seed: int = DEFAULT_SEED, dry_run: bool = False
) -> DemoSeedResult:
    """Create the demo categories and demo products 1 to `products` that do not exist yet.

    With `dry_run`, count what would be created and write nothing.
    """
    demo_seeding_check()
    if products < 0:
        raise DemoSeedError("The number of products cannot be negative.")
    if not 0 <= seed <= MAX_SEED:
        raise DemoSeedError(f"The seed must be between 0 and {MAX_SEED}.")
    started = time.perf_counter()
    specs = demo_products_generate(count=products, seed=seed)
    existing = _slugs_existing([spec.slug for spec in specs])
    missing = [spec for spec in specs if spec.slug not in existing]
    category_slugs = [c.slug for c in DEMO_CATEGORIES] + [leaf.slug for _, leaf in _LEAVES]

    pictures_written = 0
    if dry_run:
        categories_created = (
            len(category_slugs) - Category.objects.filter(slug__in=category_slugs).count()
        )
        images_created = sum(len(spec.pictures) for spec in missing)
    else:
        pictures_written = demo_pictures_ensure()
        images_created = 0
        try:
            with transaction.atomic():
                category_ids, categories_created = _categories_ensure()
                for chunk in itertools.batched(missing, CHUNK_SIZE):
                    images_created += _products_create(chunk, category_ids)
        except IntegrityError as exc:
            raise DemoSeedError(
                "A demo product clashes with existing data (a SKU or slug already taken); "
                f"nothing was written. Try another seed. ({exc})"
            ) from exc

    return DemoSeedResult(
        products=len(specs),
        products_created=len(missing),
        variants=sum(len(spec.variants) for spec in specs),
        variants_created=sum(len(spec.variants) for spec in missing),
        images_created=images_created,
        categories=len(category_slugs),
        categories_created=categories_created,
        pictures_written=pictures_written,
        seconds=time.perf_counter() - started,
        dry_run=dry_run,
    )


def demo_merchant_ensure(
    *, password: str, email: str = MERCHANT_EMAIL, dry_run: bool = False
) -> DemoMerchantResult:
    """Make sure the demo merchant exists: staff, not superuser, in the Merchants group.

    A new account gets `password`; an existing one is left as it is apart from joining the group.
    The group's permissions are reset to every permission of MERCHANT_APP_LABELS.
    """
    demo_seeding_check()
    if not password:
        raise DemoSeedError("The merchant's password cannot be empty.")
    permissions = Permission.objects.filter(content_type__app_label__in=MERCHANT_APP_LABELS)
    users = get_user_model().objects
    if dry_run:
        user = users.filter(email__iexact=email).first()
        return DemoMerchantResult(
            email=user.email if user else email,
            created=user is None,
            has_given_password=user is None or check_password(password, user.password),
            permissions=permissions.count(),
            dry_run=True,
        )
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=MERCHANT_GROUP)
        group.permissions.set(permissions)
        user = users.filter(email__iexact=email).first()
        created = user is None
        if created:
            user = users.create_user(email=email, password=password, is_staff=True)
        user.groups.add(group)
        permission_count = group.permissions.count()
    return DemoMerchantResult(
        email=user.email,
        created=created,
        # Compared without `user.check_password`, which may rewrite the stored hash.
        has_given_password=created or check_password(password, user.password),
        permissions=permission_count,
        dry_run=False,
    )


# --- Demo sales ------------------------------------------------------------------------------

DEMO_SALE_LIVE = "Flash Friday"
DEMO_SALE_UPCOMING = "Winter preview"
DEMO_SALE_DISCOUNT = Decimal("0.70")  # the sale price is 70% of the regular price


@dataclass(frozen=True)
class DemoSalesResult:
    sales_created: int
    items_created: int


def demo_sales_seed(*, now=None) -> DemoSalesResult:
    """Put a few demo products on a live sale (for three days from now) and a few on a coming
    one (starting in two days), unless those demo sales exist; return what was created.

    The items are the first variants of the first demo products (in id order), at 70% of their
    price, 20 units each (fewer if the stock is lower), two per customer.
    """
    now = now or timezone.now()
    wanted = [
        (DEMO_SALE_LIVE, now - timedelta(minutes=1), now + timedelta(days=3), slice(0, 6)),
        (DEMO_SALE_UPCOMING, now + timedelta(days=2), now + timedelta(days=4), slice(6, 10)),
    ]
    existing = set(
        Sale.objects.filter(name__in=[w[0] for w in wanted]).values_list("name", flat=True)
    )
    variants = _first_variants()[:10]
    sales = items = 0
    with transaction.atomic():
        for name, starts_at, ends_at, chosen in wanted:
            if name in existing or not variants[chosen]:
                continue
            sale = Sale.objects.create(
                name=name, starts_at=starts_at, ends_at=ends_at, per_customer_limit=2
            )
            sales += 1
            for variant in variants[chosen]:
                price = (variant.price * DEMO_SALE_DISCOUNT).quantize(Decimal("0.01"))
                if price >= variant.price:
                    continue
                SaleItem.objects.create(
                    sale=sale, variant=variant, sale_price=price, allotment=min(20, variant.stock)
                )
                items += 1
    return DemoSalesResult(sales_created=sales, items_created=items)


def _first_variants() -> list[ProductVariant]:
    """The first sellable variant of each of the first products."""
    seen, first = set(), []
    for variant in ProductVariant.objects.filter(
        is_active=True, product__is_active=True, stock__gt=0
    ).order_by("product_id", "position", "id")[:200]:
        if variant.product_id not in seen:
            seen.add(variant.product_id)
            first.append(variant)
    return first
