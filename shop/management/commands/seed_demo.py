"""Fill the shop with a demo catalog, checkout settings (shipping, tax, a voucher) and a demo
merchant account (never in production)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from catalog import demo
from catalog.models import Product
from orders import demo as orders_demo

DEFAULT_PRODUCTS = 1000
DEFAULT_MERCHANT_PASSWORD = "shop-demo-merchant"


class Command(BaseCommand):
    help = (
        "Create a deterministic demo catalog (categories, products, variants, pictures) and a "
        "demo merchant account. Safe to run again: only what is missing is created."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--products",
            type=int,
            default=DEFAULT_PRODUCTS,
            help=f"How many demo products the catalog should hold (default {DEFAULT_PRODUCTS}).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=demo.DEFAULT_SEED,
            help=f"Seed of the generator (default {demo.DEFAULT_SEED}).",
        )
        parser.add_argument(
            "--merchant-password",
            default=DEFAULT_MERCHANT_PASSWORD,
            help="Password of a newly created merchant account "
            f"(default {DEFAULT_MERCHANT_PASSWORD!r}).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the catalog already has any product.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be created; write nothing."
        )

    def handle(self, *args, **options) -> None:
        dry_run = options["dry_run"]
        try:
            demo.demo_seeding_check()
            if options["if_empty"] and Product.objects.exists():
                self.stdout.write("The catalog already has products: demo seeding skipped.")
                self._login_hint(options["merchant_password"])
                return
            catalog = demo.demo_catalog_seed(
                products=options["products"], seed=options["seed"], dry_run=dry_run
            )
            merchant = demo.demo_merchant_ensure(
                password=options["merchant_password"], dry_run=dry_run
            )
            checkout = None if dry_run else orders_demo.demo_checkout_seed()
            sales = None if dry_run else demo.demo_sales_seed()
        except demo.DemoSeedError as exc:
            raise CommandError(str(exc)) from exc

        counts = (
            f"{catalog.products} products ({catalog.products_created} new), "
            f"{catalog.variants} variants, "
            f"{catalog.categories} categories ({catalog.categories_created} new)"
        )
        if dry_run:
            self.stdout.write(f"Dry run, nothing written. Would seed demo catalog: {counts}.")
        else:
            self.stdout.write(f"Seeded demo catalog: {counts} in {catalog.seconds:.1f} s.")
        if checkout is not None:
            self.stdout.write(
                f"Checkout: {checkout.shipping_methods_created} shipping method(s), "
                f"{checkout.tax_rates_created} tax rate(s) and "
                f"{checkout.vouchers_created} voucher(s) added "
                f"(try the code {orders_demo.DEMO_VOUCHER})."
            )

        if sales is not None and sales.sales_created:
            self.stdout.write(
                f"Sales: {sales.sales_created} demo sale(s) with {sales.items_created} item(s) "
                f"(“{demo.DEMO_SALE_LIVE}” is on now, “{demo.DEMO_SALE_UPCOMING}” starts in two "
                "days)."
            )

        if not merchant.created:
            account = "existing account"
        elif dry_run:
            account = "account to be created"
        else:
            account = "new account"
        password = (
            options["merchant_password"]
            if merchant.has_given_password
            else "(not the one given: the account's password was left as it was)"
        )
        self.stdout.write(f"Demo merchant ({account}): {merchant.email} / {password}")
        self.stdout.write(f"Back office: {reverse('admin:index')}")

    def _login_hint(self, password: str) -> None:
        """Tell how to sign in to the back office when seeding was skipped."""
        merchant = demo.demo_merchant_ensure(password=password, dry_run=True)
        if not merchant.created and merchant.has_given_password:
            self.stdout.write(f"Demo merchant: {merchant.email} / {password}")
        else:
            self.stdout.write(
                "Back office: sign in with a staff account "
                "(python manage.py createsuperuser makes one)."
            )
        self.stdout.write(f"Back office: {reverse('admin:index')}")
