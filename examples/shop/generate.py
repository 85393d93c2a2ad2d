"""Write the shop example's CSV files (items, users, events) beside this script.

A small shop in four clear departments, with its own column names, so that the README's
"Your own catalogue" commands show the column mappings at work. Deterministic: running it
again writes the same files.
"""

from __future__ import annotations

import csv
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent

CATALOGUE = {
    "coffee": [
        (
            "Ethiopian Yirgacheffe beans 1 kg",
            "Light roast whole coffee beans with notes of jasmine and lemon.",
            "beans|light roast",
        ),
        (
            "Colombian dark roast beans 500 g",
            "Dark roast whole coffee beans, chocolate and caramel, for espresso.",
            "beans|espresso",
        ),
        (
            "Hand coffee grinder with ceramic burrs",
            "Adjustable burr grinder for filter and espresso coffee.",
            "grinder|brewing kit",
        ),
        (
            "Pour-over coffee dripper",
            "Ceramic cone dripper for brewing filter coffee by hand.",
            "pour-over|brewing kit",
        ),
        (
            "Gooseneck kettle 1 litre",
            "Kettle with a thin spout for a steady pour over coffee grounds.",
            "pour-over|brewing kit",
        ),
        ("French press 8 cups", "Glass and steel cafetiere for full-bodied coffee.", "brewing kit"),
        (
            "Espresso tamper 58 mm",
            "Stainless steel tamper for packing espresso coffee in the portafilter.",
            "espresso|brewing kit",
        ),
        (
            "Paper coffee filters, 100 pack",
            "Unbleached paper filters for pour-over coffee drippers.",
            "pour-over",
        ),
        (
            "Decaf Brazilian coffee beans 500 g",
            "Swiss water decaffeinated coffee beans, nutty and sweet.",
            "beans|decaf",
        ),
    ],
    "running": [
        (
            "Trail running shoes",
            "Grippy lugged running shoes for muddy and rocky trails.",
            "shoes|trail",
        ),
        (
            "Road running shoes, cushioned",
            "Light cushioned running shoes for long road runs and marathons.",
            "shoes|road",
        ),
        ("Running socks, 3 pairs", "Breathable blister-free socks for running.", "apparel"),
        (
            "GPS running watch",
            "Watch that tracks pace, distance and heart rate on every run.",
            "electronics|training",
        ),
        (
            "Running vest with two soft flasks",
            "Hydration vest for long runs and trail races.",
            "trail|hydration",
        ),
        (
            "Reflective running jacket",
            "Light windproof jacket with reflective strips for running at night.",
            "apparel|night",
        ),
        ("Running shorts with phone pocket", "Quick-dry shorts for running and racing.", "apparel"),
        (
            "Running headlamp 400 lumen",
            "Bright bouncing-free headlamp for early morning runs.",
            "night|electronics",
        ),
        (
            "Foam roller for runners",
            "Firm roller to loosen calves and legs after running.",
            "recovery|training",
        ),
    ],
    "camping": [
        (
            "Two-person backpacking tent",
            "Light tent for camping and hiking trips, pitches in five minutes.",
            "shelter|backpacking",
        ),
        (
            "Down sleeping bag, -5 C",
            "Warm sleeping bag for camping in spring and autumn.",
            "sleep|backpacking",
        ),
        ("Inflatable sleeping pad", "Insulated camping mat that packs small.", "sleep"),
        (
            "Camping stove and pot set",
            "Gas stove with a pot and lid for cooking at camp.",
            "camp kitchen",
        ),
        (
            "Hiking backpack 45 litres",
            "Backpack for multi-day hiking and camping trips.",
            "backpacking|hiking",
        ),
        (
            "Water filter for hiking",
            "Squeeze filter that makes stream water safe on hikes and camping trips.",
            "hiking|hydration",
        ),
        (
            "Camping lantern, rechargeable",
            "LED lantern that lights the tent and the camp table.",
            "campsite|electronics",
        ),
        ("Folding camping chair", "Compact chair for the campsite and the campfire.", "campsite"),
        (
            "Trekking poles, carbon",
            "Light adjustable poles for hiking up and down hills.",
            "hiking",
        ),
    ],
    "baking": [
        (
            "Sourdough starter kit",
            "Jar, flour and instructions to raise a sourdough starter for bread baking.",
            "bread|sourdough",
        ),
        (
            "Cast iron Dutch oven 5 litres",
            "Heavy pot for baking crusty bread and slow cooking.",
            "bread|cookware",
        ),
        (
            "Bread proofing basket",
            "Rattan banneton that shapes and proofs bread dough.",
            "bread|sourdough",
        ),
        (
            "Digital kitchen scale",
            "Scale that weighs flour and water to the gram for baking.",
            "tools",
        ),
        (
            "Stand mixer with dough hook",
            "Mixer that kneads bread dough and whips cake batter.",
            "appliances|cakes",
        ),
        (
            "Silicone baking mats, 2 pack",
            "Non-stick mats for baking cookies and pastry.",
            "cookies|pastry",
        ),
        (
            "Strong bread flour 5 kg",
            "High-protein white flour for baking bread and pizza.",
            "bread|ingredients",
        ),
        (
            "Bench scraper and dough whisk",
            "Tools for mixing and shaping bread dough.",
            "bread|tools",
        ),
        ("Cake tins, 3 sizes", "Non-stick round tins for baking layer cakes.", "cakes"),
    ],
}


def main() -> None:
    """Write items.csv, users.csv and events.csv."""
    rng = random.Random(7)
    departments = list(CATALOGUE)
    items = []
    for dept in departments:
        for n, (name, description, keywords) in enumerate(CATALOGUE[dept], 1):
            items.append(
                {
                    "sku": f"{dept[:3].upper()}-{n:02d}",
                    "name": name,
                    "department": dept,
                    "description": description,
                    "keywords": keywords,
                }
            )
    by_dept = {
        dept: [it["sku"] for it in items if it["department"] == dept] for dept in departments
    }
    users, events = [], []
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    for u in range(1, 41):
        customer = f"C{u:03d}"
        main = departments[(u - 1) % 4]
        second = rng.choice([d for d in departments if d != main]) if rng.random() < 0.4 else None
        users.append(
            {
                "customer": customer,
                "country": rng.choice(["DE", "FR", "UK", "NL"]),
                "joined": (start - timedelta(days=rng.randint(30, 900))).date().isoformat(),
            }
        )
        when = start + timedelta(days=rng.randint(0, 20), hours=rng.randint(7, 22))
        for _ in range(rng.randint(8, 12)):
            dept = second if second and rng.random() < 0.3 else main
            sku = rng.choice(by_dept[dept])
            action = "purchase" if rng.random() < 0.3 else "view"
            events.append(
                {
                    "customer": customer,
                    "sku": sku,
                    "action": action,
                    "when": when.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            when += timedelta(hours=rng.randint(1, 72))
    for name, rows in (("items.csv", items), ("users.csv", users), ("events.csv", events)):
        with open(HERE / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
