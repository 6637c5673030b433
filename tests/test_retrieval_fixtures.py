"""Helpers (no tests) for the retrieval, embedding and context tests: a small multi-module repo
indexed by the real pipeline (real tree-sitter, real SQLite)."""

from __future__ import annotations

import textwrap
from pathlib import Path

FILES = {
    "shop/__init__.py": "",
    "shop/cart.py": '''
        """Shopping cart."""
        from shop.pricing import compute_total


        class Cart:
            """Items a customer is about to buy."""

            def __init__(self):
                self.items = []

            def add_item(self, sku, quantity=1):
                """Add QUANTITY of SKU to the cart."""
                if quantity <= 0:
                    raise ValueError("quantity must be positive")
                self.items.append((sku, quantity))

            def remove_item(self, sku):
                self.items = [(s, q) for s, q in self.items if s != sku]

            def total_price(self, prices):
                return compute_total(self.items, prices)
        ''',
    "shop/pricing.py": '''
        """Prices, discounts and totals."""


        def compute_total(items, prices):
            """Sum of price times quantity over the items."""
            total = 0
            for sku, quantity in items:
                total += prices[sku] * quantity
            return total


        def apply_discount(total, percent):
            """Reduce TOTAL by PERCENT; percent must lie in 0..100."""
            if not 0 <= percent <= 100:
                raise ValueError("bad percent")
            return total * (100 - percent) / 100


        def round_money(value):
            return round(value + 1e-9, 2)
        ''',
    "shop/payment.py": '''
        """Card payments."""
        import re

        CARD_RE = re.compile(r"^[0-9]{16}$")


        def validate_card(number):
            """Luhn check of a card number."""
            digits = [int(d) for d in number]
            checksum = 0
            for i, d in enumerate(reversed(digits)):
                if i % 2:
                    d *= 2
                    if d > 9:
                        d -= 9
                checksum += d
            return checksum % 10 == 0


        def process_payment(card, amount):
            """Charge AMOUNT to CARD after validation."""
            if not validate_card(card):
                raise PaymentError("invalid card")
            return {"status": "charged", "amount": amount}


        class PaymentError(Exception):
            pass
        ''',
    "shop/inventory.py": '''
        """Stock levels per warehouse."""


        class Inventory:
            def __init__(self):
                self.stock = {}

            def reserve_stock(self, sku, quantity):
                """Hold QUANTITY units of SKU for an order."""
                have = self.stock.get(sku, 0)
                if have < quantity:
                    raise RuntimeError("out of stock")
                self.stock[sku] = have - quantity

            def release_stock(self, sku, quantity):
                self.stock[sku] = self.stock.get(sku, 0) + quantity
        ''',
    "util/text.py": '''
        """Text helpers."""
        import unicodedata


        def slugify(title):
            """Lowercase ASCII words joined by dashes, for URLs."""
            norm = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
            words = [w for w in norm.lower().split() if w.isalnum()]
            return "-".join(words)


        def parseHttpHeader(line):
            name, _, value = line.partition(":")
            return name.strip().lower(), value.strip()
        ''',
}


def write_repo(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or FILES).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def index(root: Path, *, embed: bool = False):
    from repoloop.indexer.pipeline import index_repo

    return index_repo(root, embed=embed, progress=False, jobs=1)
