"""What the benchmark measures: environments, stores and configurations (no Django here).

Shared by the runner, which sends names to the workers, and the workers,
which turn the names into requests.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ENVIRONMENTS",
    "LOOPBACK_WAYS",
    "RULE_COUNTS",
    "SCALE_SIZES",
    "STORES",
    "WAYS",
    "Config",
    "Environment",
    "ScaleConfig",
    "Store",
    "Way",
    "main_configs",
    "scale_configs",
]


@dataclass(frozen=True)
class Store:
    """Where change stamps and derived validators live (two ``CONDITIONAL_*`` settings)."""

    name: str
    stamp_cache: str | None  # CONDITIONAL_STAMP_CACHE: a cache alias, None = the database
    validator_cache: str  # CONDITIONAL_CACHE
    description: str
    # Correct with more than one process (DESIGN.md: locmem stamps are one process only).
    shared: bool


STORES: dict[str, Store] = {
    store.name: store
    for store in (
        Store("locmem", "locmem", "locmem", "stamps and validators in local memory", False),
        Store("redis", "redis", "redis", "stamps and validators in Redis", True),
        Store(
            "redis+locmem", "redis", "locmem", "stamps in Redis, validators in local memory", True
        ),
        Store("db", None, "locmem", "stamps in the database, validators in local memory", True),
    )
}


@dataclass(frozen=True)
class Environment:
    """A database and a connection policy: one worker process each."""

    database: str  # sqlite or postgresql
    conn_max_age: str  # "persistent" (None) or "0"

    @property
    def name(self) -> str:
        """``sqlite/persistent``, ``postgresql/conn0``..."""
        policy = "persistent" if self.conn_max_age == "persistent" else f"conn{self.conn_max_age}"
        return f"{self.database}/{policy}"

    @property
    def label(self) -> str:
        """A heading for the table."""
        database = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[self.database]
        age = "None" if self.conn_max_age == "persistent" else self.conn_max_age
        return f"{database}, CONN_MAX_AGE={age}"


ENVIRONMENTS = [
    Environment(database, age)
    for database in ("sqlite", "postgresql")
    for age in ("persistent", "0")
]


@dataclass(frozen=True)
class Way:
    """One way of serving the front page."""

    name: str
    path: str  # URL path
    label: str
    ours: bool  # depends on the store
    # Answers 304 before the view runs (False: only after rendering, or never).
    conditional: bool
    # Requested through ConditionalRulesMiddleware (the only middleware of that
    # handler) with this many enabled rules in the database; 0: no middleware at all.
    rules: int = 0
    # The same request with fewer enabled rules, which this way is compared to.
    fewer_rules: str = ""

    @property
    def through_rules(self) -> bool:
        """Whether the request goes through ``ConditionalRulesMiddleware``."""
        return self.rules > 0


# Enabled rules while the rule ways are measured: few, and many (the index must
# keep many as cheap as few). One covers /rule/; the others cover /section-N/*/.
RULE_COUNTS = (10, 1_000)
FEW_RULES, MANY_RULES = RULE_COUNTS

WAYS: dict[str, Way] = {
    way.name: way
    for way in (
        Way("empty", "/empty/", "empty Django view (the floor)", False, False),
        Way("full", "/full/", "full render, no validators", False, False),
        Way(
            "django-middleware",
            "/django/middleware/",
            "Django ConditionalGetMiddleware",
            False,
            True,
        ),
        Way(
            "django-condition",
            "/django/condition/",
            "Django condition + Count/Max aggregate",
            False,
            True,
        ),
        Way("ours-queryset", "/ours/queryset/", "ours: @conditional(queryset=...)", True, True),
        Way("ours-mixin", "/ours/mixin/", "ours: ConditionalListMixin ListView", True, True),
        Way(
            "ours-depends-on", "/ours/depends-on/", "ours: @conditional(depends_on=...)", True, True
        ),
        # A plain view covered by a ConditionalRule on the same models as depends-on.
        Way("rule", "/rule/", "ours: rule (middleware), 10 rules", True, True, FEW_RULES),
        Way(
            "rule-1k",
            "/rule/",
            "ours: rule (middleware), 1,000 rules",
            True,
            True,
            MANY_RULES,
            fewer_rules="rule",
        ),
        # The empty view through the middleware, which no rule matches.
        Way(
            "no-match", "/empty/", "no rule matches (middleware), 10 rules", True, False, FEW_RULES
        ),
        Way(
            "no-match-1k",
            "/empty/",
            "no rule matches (middleware), 1,000 rules",
            True,
            False,
            MANY_RULES,
            fewer_rules="no-match",
        ),
    )
}

# Over loopback: the floor, the render, Django's two and ours with shared stores.
# Not the rule ways: gunicorn serves the settings as they are, without middleware.
LOOPBACK_WAYS = (
    "empty",
    "full",
    "django-middleware",
    "django-condition",
    *(name for name in WAYS if WAYS[name].ours and not WAYS[name].through_rules),
)


@dataclass(frozen=True)
class Config:
    """One row of the main table: a way, a store (ours only), the 304 or the 200 path."""

    way: str
    store: str | None
    revalidation: bool  # sends the current ETag in If-None-Match: the 304 path

    @property
    def name(self) -> str:
        """``ours-queryset/redis/304``, ``full/200``..."""
        parts = [self.way] + ([self.store] if self.store else [])
        return "/".join([*parts, "304" if self.revalidation else "200"])

    @property
    def expected_status(self) -> int:
        """What every measured response must be."""
        return 304 if self.revalidation else 200


def main_configs(stores: list[str]) -> list[Config]:
    """Every configuration of the main table, for the given stores."""
    configs = [Config("empty", None, False), Config("full", None, False)]
    for name in ("django-middleware", "django-condition"):
        configs += [Config(name, None, True), Config(name, None, False)]
    for name, way in WAYS.items():
        if way.ours:
            for store in stores:
                # A way that never answers 304 (no rule matches) has only the 200.
                if way.conditional:
                    configs.append(Config(name, store, True))
                configs.append(Config(name, store, False))
    return configs


SCALE_SIZES = (1_000, 10_000, 100_000, 1_000_000)


@dataclass(frozen=True)
class ScaleConfig:
    """A steady-state scaling measurement: one validator over one table or its 1% subset."""

    size: int
    subset: bool
    way: str  # ours, django, depends_on

    @property
    def name(self) -> str:
        """``1000/whole/ours``..."""
        return f"{self.size}/{'subset' if self.subset else 'whole'}/{self.way}"

    @property
    def path(self) -> str:
        """The view's URL."""
        return f"/scale/{self.name}/"


def scale_configs(sizes: tuple[int, ...]) -> list[ScaleConfig]:
    """Steady-state scaling configurations: ours and Django's per set, depends_on per table."""
    configs: list[ScaleConfig] = []
    for size in sizes:
        for subset in (False, True):
            configs += [ScaleConfig(size, subset, "ours"), ScaleConfig(size, subset, "django")]
        configs.append(ScaleConfig(size, False, "depends_on"))
    return configs
