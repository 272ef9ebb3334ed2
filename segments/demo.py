"""A realistic demo dataset: profiles from five language communities, with the data problems
real exports meet (missing and invalid emails, one address shared by several profiles)."""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Iterator
from datetime import date, timedelta

from segments.importing import ProfileRecord
from segments.models import ProfileField

# (first names, last names, country, cities, language); romanised names give the e-mail part.
COMMUNITIES = [
    (
        [
            ("伟", "wei"),
            ("娜", "na"),
            ("静", "jing"),
            ("磊", "lei"),
            ("芳", "fang"),
            ("洋", "yang"),
        ],
        [
            ("王", "wang"),
            ("李", "li"),
            ("张", "zhang"),
            ("刘", "liu"),
            ("陈", "chen"),
            ("杨", "yang"),
        ],
        "China",
        ["北京", "上海", "广州", "深圳"],
        "zh-hans",
    ),
    (
        [("健", "ken"), ("美咲", "misaki"), ("翔太", "shota"), ("陽菜", "hina"), ("蓮", "ren")],
        [
            ("佐藤", "sato"),
            ("鈴木", "suzuki"),
            ("高橋", "takahashi"),
            ("田中", "tanaka"),
            ("渡辺", "watanabe"),
        ],
        "Japan",
        ["東京", "大阪", "名古屋", "札幌"],
        "ja",
    ),
    (
        [
            ("Élodie", "elodie"),
            ("Théo", "theo"),
            ("Chloé", "chloe"),
            ("Hugo", "hugo"),
            ("Léa", "lea"),
        ],
        [
            ("Dubois", "dubois"),
            ("Lefèvre", "lefevre"),
            ("Moreau", "moreau"),
            ("Girard", "girard"),
            ("Faure", "faure"),
        ],
        "France",
        ["Paris", "Lyon", "Marseille", "Toulouse"],
        "fr",
    ),
    (
        [
            ("Ingrid", "ingrid"),
            ("Øystein", "oystein"),
            ("Kari", "kari"),
            ("Håkon", "hakon"),
            ("Siri", "siri"),
        ],
        [
            ("Hansen", "hansen"),
            ("Johansen", "johansen"),
            ("Ødegård", "odegard"),
            ("Berg", "berg"),
            ("Dahl", "dahl"),
        ],
        "Norway",
        ["Oslo", "Bergen", "Trondheim", "Tromsø"],
        "nb",
    ),
    (
        [
            ("Emma", "emma"),
            ("James", "james"),
            ("Olivia", "olivia"),
            ("Noah", "noah"),
            ("Ava", "ava"),
        ],
        [
            ("Smith", "smith"),
            ("Johnson", "johnson"),
            ("Brown", "brown"),
            ("Taylor", "taylor"),
            ("Wilson", "wilson"),
        ],
        "United Kingdom",
        ["London", "Manchester", "Leeds", "Bristol"],
        "en",
    ),
]
DOMAINS = ["example.com", "example.org", "example.net", "mail.example"]
TIERS = ["bronze", "silver", "gold", "platinum"]
ATTRIBUTE_TYPES = {
    "country": ProfileField.DataType.TEXT,
    "city": ProfileField.DataType.TEXT,
    "language": ProfileField.DataType.TEXT,
    "lifetime_value": ProfileField.DataType.NUMBER,
    "orders": ProfileField.DataType.NUMBER,
    "signup_date": ProfileField.DataType.DATE,
    "newsletter": ProfileField.DataType.TEXT,
    "loyalty_tier": ProfileField.DataType.TEXT,
}
MISSING_EMAIL_SHARE = 0.03
INVALID_EMAIL_SHARE = 0.02
SHARED_EMAIL_SHARE = 0.01

SEGMENTS = [
    (
        "Norwegian customers",
        "Everyone whose country is Norway.",
        {
            "match": "all",
            "conditions": [{"field": "country", "operator": "equals", "value": "Norway"}],
        },
    ),
    (
        "High-value customers",
        "Lifetime value above 1,000, or the platinum tier.",
        {
            "match": "any",
            "conditions": [
                {"field": "lifetime_value", "operator": "greater_than", "value": "1000"},
                {"field": "loyalty_tier", "operator": "equals", "value": "platinum"},
            ],
        },
    ),
    (
        "Newsletter readers in Asia",
        "Opted in to the newsletter and living in China or Japan.",
        {
            "match": "all",
            "conditions": [
                {"field": "newsletter", "operator": "equals", "value": "yes"},
                {"field": "country", "operator": "in_list", "value": ["China", "Japan"]},
            ],
        },
    ),
]


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def demo_profiles(count: int, seed: int = 20261125) -> Iterator[ProfileRecord]:
    """``count`` profiles, the same ones for the same seed."""
    rng = random.Random(seed)
    recent_emails: list[str] = []
    first_signup = date(2018, 1, 1)
    for number in range(1, count + 1):
        firsts, lasts, country, cities, language = rng.choice(COMMUNITIES)
        first, first_ascii = rng.choice(firsts)
        last, last_ascii = rng.choice(lasts)
        roll = rng.random()
        if roll < MISSING_EMAIL_SHARE:
            email = ""
        elif roll < MISSING_EMAIL_SHARE + INVALID_EMAIL_SHARE:
            email = rng.choice(
                [
                    f"{first_ascii}.{last_ascii}",
                    f"{first_ascii}@",
                    f"{last_ascii}@@{rng.choice(DOMAINS)}",
                ]
            )
        elif (
            roll < MISSING_EMAIL_SHARE + INVALID_EMAIL_SHARE + SHARED_EMAIL_SHARE and recent_emails
        ):
            email = rng.choice(recent_emails).upper()
        else:
            email = f"{_ascii(first_ascii)}.{_ascii(last_ascii)}{number}@{rng.choice(DOMAINS)}"
            if len(recent_emails) < 1000:
                recent_emails.append(email)
            else:
                recent_emails[number % 1000] = email
        lifetime_value = round(rng.lognormvariate(5.5, 1.0), 2)
        yield ProfileRecord(
            number,
            f"cust-{number:07d}",
            email,
            first,
            last,
            {
                "country": country,
                "city": rng.choice(cities),
                "language": language,
                "lifetime_value": lifetime_value,
                "orders": rng.randint(0, 40),
                "signup_date": (first_signup + timedelta(days=rng.randint(0, 3000))).isoformat(),
                "newsletter": "yes" if rng.random() < 0.6 else "no",
                "loyalty_tier": TIERS[min(3, int(lifetime_value // 500))],
            },
        )
