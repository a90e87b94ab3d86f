"""Feed contracts: what each landing feed must look like, column by column.

A contract is the promise a source system makes to the pipeline. The router
(`quality.router`) holds every row to it; anything that breaks it is quarantined
with a stable reason code rather than loaded or dropped. The descriptions are
written for the people who read the tables: they become DuckDB table and column
comments, so they say what a value *means*, not how it is parsed.

The contracts are plain data (no Dagster, no I/O) so that the demo-data
generator, the router, the GX suites and the docs all read the same definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal["id", "text", "enum", "int", "money", "float", "date", "timestamp", "bool"]

#: DuckDB storage type per contract type. Money is DECIMAL, never a float.
SQL_TYPES: dict[str, str] = {
    "id": "VARCHAR",
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "int": "BIGINT",
    "money": "DECIMAL(18,2)",
    "float": "DOUBLE",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "bool": "BOOLEAN",
}

#: Accepted currencies. The pipeline has no FX feed yet, so amounts in any other
#: currency would be summed as if they were yuan: they are quarantined instead.
ACCEPTED_CURRENCIES: tuple[str, ...] = ("CNY",)

#: Service attributes asked about in the satisfaction survey (importance,
#: performance and a Kano question pair each).
SERVICE_ATTRIBUTES: tuple[str, ...] = ("delivery", "product_quality", "price", "after_sales", "staff")

#: Kano answer codes, in the order of the Kano evaluation table.
KANO_ANSWERS: dict[int, str] = {1: "like", 2: "must-be", 3: "neutral", 4: "live-with", 5: "dislike"}


@dataclass(frozen=True)
class Column:
    """One contract column.

    `normalise` applies Unicode NFKC (full-width digits and letters become ASCII)
    before casting; it is on for identifiers, codes, numbers and dates, and off for
    free text and names, whose exact form is the customer's.
    """

    name: str
    type: ColumnType
    description: str
    required: bool = True
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    #: reason code used when the value breaks `allowed` / `min` / `max`.
    domain_reason: str = "INVALID_VALUE"
    pii: bool = False
    lower: bool = False

    @property
    def normalise(self) -> bool:
        return self.type != "text"

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class FeedContract:
    """A feed: its columns, its key, and the rules that tie it to other feeds."""

    name: str
    description: str
    columns: tuple[Column, ...]
    #: columns that identify a row; two rows with the same key and different
    #: content are a DUPLICATE_CONFLICT.
    key: tuple[str, ...]
    #: column whose date in the business time zone is the row's business date.
    event_column: str
    #: immutable events (orders, surveys, interactions): a key seen in an earlier
    #: partition is a re-delivery (same content) or a conflict. Mutable entities
    #: (customers, payments) may restate a key on a later day: the newest wins.
    immutable: bool = True
    #: other date/timestamp columns that must not lie in the future or before the
    #: pipeline's earliest valid date.
    checked_dates: tuple[str, ...] = ()
    #: dates that legitimately lie in the future (an invoice's due date) but must
    #: still be after the earliest valid date.
    range_only_dates: tuple[str, ...] = ()
    #: column holding a customer reference that must exist in staging.customers.
    customer_column: str | None = "customer_ref"
    grid_columns: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


def _c(name: str, type_: ColumnType, description: str, **kw: object) -> Column:
    return Column(name, type_, description, **kw)  # type: ignore[arg-type]


ORDERS = FeedContract(
    name="orders",
    description=(
        "Order lines from the order system: one row per product line of an order, a "
        "return or a cancellation. Returns are their own rows (status 'returned') that "
        "point at the original order."
    ),
    columns=(
        _c("order_id", "id", "Order number; with line_no it identifies the line."),
        _c("line_no", "int", "Line number within the order, from 1.", min=1),
        _c("customer_ref", "id", "Customer record in the source system that placed the order."),
        _c("ordered_at", "timestamp", "When the order (or return) was placed; ISO 8601 with UTC offset."),
        _c("product_id", "id", "Product (SKU) code."),
        _c("category", "enum", "Product category code.", lower=True),
        _c(
            "quantity",
            "int",
            "Units on the line; always positive, the status gives the direction.",
            min=1,
            domain_reason="NON_POSITIVE_AMOUNT",
        ),
        _c(
            "unit_price",
            "money",
            "List price per unit before discount, in `currency`.",
            min=0.01,
            domain_reason="NON_POSITIVE_AMOUNT",
        ),
        _c(
            "discount",
            "money",
            "Discount granted on the whole line (not per unit), in `currency`; 0 if none.",
            min=0,
            domain_reason="NON_POSITIVE_AMOUNT",
        ),
        _c(
            "currency",
            "enum",
            "ISO 4217 currency code of the amounts.",
            allowed=ACCEPTED_CURRENCIES,
            domain_reason="UNKNOWN_CURRENCY",
        ),
        _c(
            "status",
            "enum",
            "completed: sold; returned: goods came back (refund); cancelled: never fulfilled.",
            allowed=("completed", "returned", "cancelled"),
            lower=True,
        ),
        _c("channel", "enum", "Sales channel.", allowed=("store", "web", "app", "phone", "sales_rep"), lower=True),
        _c(
            "original_order_id",
            "id",
            "For returns: the order the goods were bought in. Empty otherwise.",
            required=False,
        ),
    ),
    key=("order_id", "line_no"),
    event_column="ordered_at",
)

CUSTOMERS = FeedContract(
    name="customers",
    description=(
        "Customer records as each source system holds them. The same person or company "
        "may appear in several systems under different references; identity resolution "
        "links them later. A record restated on a later day replaces the earlier one."
    ),
    columns=(
        _c("customer_ref", "id", "Record id, unique across source systems (system prefix + number)."),
        _c(
            "source_system", "enum", "System the record comes from.", allowed=("crm", "web", "store", "erp"), lower=True
        ),
        _c("name", "text", "Person or company name as entered. Personal data.", pii=True),
        _c("phone", "id", "Phone number as entered (any format). Personal data.", required=False, pii=True),
        _c("email", "id", "E-mail address as entered (any case). Personal data.", required=False, pii=True),
        _c(
            "tax_id",
            "id",
            "Unified social credit code for organisations; empty for individuals. Personal data.",
            required=False,
            pii=True,
        ),
        _c(
            "kind",
            "enum",
            "Customer kind by nature.",
            allowed=("individual", "enterprise", "government", "partner", "internal"),
            lower=True,
        ),
        _c("region", "text", "Province-level region (Chinese name)."),
        _c("industry", "enum", "Industry code for organisations; empty for individuals.", required=False, lower=True),
        _c("employees", "int", "Head count for organisations; empty for individuals.", required=False, min=0),
        _c(
            "annual_revenue",
            "money",
            "Annual revenue for organisations in CNY; empty for individuals.",
            required=False,
            min=0,
        ),
        _c("signup_date", "date", "Date the record was created in the source system."),
        _c(
            "acquisition_channel",
            "enum",
            "Channel that acquired the customer.",
            allowed=("organic", "search", "social", "referral", "trade_show", "direct_sales", "partner"),
            lower=True,
        ),
        _c(
            "acquisition_cost",
            "money",
            "Marketing cost attributed to acquiring this record, CNY.",
            min=0,
            domain_reason="NON_POSITIVE_AMOUNT",
        ),
    ),
    key=("customer_ref",),
    event_column="signup_date",
    immutable=False,
    customer_column=None,
)

PAYMENTS = FeedContract(
    name="payments",
    description=(
        "Invoice ledger events: an invoice appears when it is issued (paid_date empty) and "
        "again when it is paid. The newest row per invoice is its current state."
    ),
    columns=(
        _c("invoice_id", "id", "Invoice number."),
        _c("customer_ref", "id", "Customer record billed."),
        _c("order_id", "id", "Order the invoice is for."),
        _c("amount", "money", "Invoice amount in CNY.", min=0.01, domain_reason="NON_POSITIVE_AMOUNT"),
        _c("invoice_date", "date", "Date the invoice was issued."),
        _c("due_date", "date", "Payment due date."),
        _c("paid_date", "date", "Date the payment was received; empty while unpaid.", required=False),
    ),
    key=("invoice_id",),
    event_column="invoice_date",
    immutable=False,
    checked_dates=("paid_date",),
    range_only_dates=("due_date",),
)

_LIKERT = {"min": 1, "max": 10, "domain_reason": "LIKERT_OUT_OF_RANGE"}
_ACSI_ITEMS: tuple[tuple[str, str], ...] = (
    ("exp_1", "Expectation before buying: overall quality (1 = very low, 10 = very high)."),
    ("exp_2", "Expectation: how well the offer would meet personal needs."),
    ("exp_3", "Expectation: how often things would go wrong (10 = never)."),
    ("qual_1", "Perceived quality: overall."),
    ("qual_2", "Perceived quality: meets personal needs."),
    ("qual_3", "Perceived quality: reliability (10 = never goes wrong)."),
    ("value_1", "Perceived value: quality given the price."),
    ("value_2", "Perceived value: price given the quality."),
    ("sat_1", "Satisfaction: overall."),
    ("sat_2", "Satisfaction: compared with expectations."),
    ("sat_3", "Satisfaction: compared with the ideal supplier."),
)

SURVEYS = FeedContract(
    name="surveys",
    description=(
        "Satisfaction survey responses, one row per completed questionnaire: the ACSI block "
        "(1-10), recommend intent (0-10), importance / performance (1-10) and a Kano "
        "functional / dysfunctional pair (codes 1 like, 2 must-be, 3 neutral, 4 live-with, "
        "5 dislike) per service attribute, an attention check and a free-text comment."
    ),
    columns=(
        _c("response_id", "id", "Response id from the survey tool."),
        _c("customer_ref", "id", "Customer record of the respondent; empty for anonymous responses.", required=False),
        _c("survey_id", "id", "Questionnaire id."),
        _c("version", "int", "Questionnaire version.", min=1),
        _c("wave", "id", "Fieldwork wave, e.g. 2025Q2."),
        _c("started_at", "timestamp", "When the respondent started; ISO 8601 with UTC offset."),
        _c("duration_s", "int", "Seconds taken to complete.", min=0),
        *(_c(n, "int", d, **_LIKERT) for n, d in _ACSI_ITEMS),
        _c("complaint", "bool", "Has complained to the company in the last 12 months."),
        _c("repurchase", "int", "Likelihood to buy again (1-10).", **_LIKERT),
        _c("price_tolerance", "int", "Would still buy after a price rise (1-10).", **_LIKERT),
        _c("recommend", "int", "Likelihood to recommend (0-10).", min=0, max=10, domain_reason="LIKERT_OUT_OF_RANGE"),
        *(_c(f"imp_{a}", "int", f"Importance of {a.replace('_', ' ')} (1-10).", **_LIKERT) for a in SERVICE_ATTRIBUTES),
        *(
            _c(f"perf_{a}", "int", f"Performance on {a.replace('_', ' ')} (1-10).", **_LIKERT)
            for a in SERVICE_ATTRIBUTES
        ),
        *(
            _c(
                f"kano_f_{a}",
                "int",
                f"Kano functional answer for {a.replace('_', ' ')} (1-5).",
                min=1,
                max=5,
                domain_reason="LIKERT_OUT_OF_RANGE",
            )
            for a in SERVICE_ATTRIBUTES
        ),
        *(
            _c(
                f"kano_d_{a}",
                "int",
                f"Kano dysfunctional answer for {a.replace('_', ' ')} (1-5).",
                min=1,
                max=5,
                domain_reason="LIKERT_OUT_OF_RANGE",
            )
            for a in SERVICE_ATTRIBUTES
        ),
        _c(
            "attention_check",
            "int",
            "Instructed item 'select 7'; any other answer fails the check.",
            required=False,
            **_LIKERT,
        ),
        _c("comment", "text", "Free-text suggestion; may contain personal data.", required=False, pii=True),
    ),
    key=("response_id",),
    event_column="started_at",
    grid_columns=tuple(n for n, _ in _ACSI_ITEMS),
)

INTERACTIONS = FeedContract(
    name="interactions",
    description="Service and marketing interactions: complaints, praise, suggestions, campaign responses.",
    columns=(
        _c("interaction_id", "id", "Interaction id from the service desk or campaign tool."),
        _c("customer_ref", "id", "Customer record concerned."),
        _c("at", "timestamp", "When it happened; ISO 8601 with UTC offset."),
        _c(
            "type",
            "enum",
            "What the customer did.",
            allowed=("complaint", "praise", "suggestion", "campaign_response"),
            lower=True,
        ),
        _c(
            "channel",
            "enum",
            "Where it happened.",
            allowed=("phone", "email", "web", "app", "store", "wechat"),
            lower=True,
        ),
    ),
    key=("interaction_id",),
    event_column="at",
)

#: Where a lead came from.
LEAD_SOURCES: tuple[str, ...] = ("trade_show", "web_form", "referral", "cold_call", "partner", "campaign")
#: Credit-bureau ratings of a lead ('unknown': the bureau has no record).
CREDIT_RATINGS: tuple[str, ...] = ("A", "B", "C", "D", "unknown")
#: Role of the lead's contact person in the prospect's purchase decision.
CONTACT_ROLES: tuple[str, ...] = ("owner", "executive", "purchasing_manager", "engineer", "assistant", "other")
#: How strongly the prospect has expressed a need, weakest first.
NEED_LEVELS: tuple[str, ...] = ("none", "interest", "stated_need", "urgent")

LEADS = FeedContract(
    name="leads",
    description=(
        "Prospects (sales leads) from sales and marketing: who they are, where they came from and "
        "what sales has learnt about their money, authority and need (the MAN rule). A lead is "
        "restated on a later day when sales learns more; the newest version replaces the earlier one. "
        "A lead carries no customer reference: a prospect who buys becomes a customer record, linked "
        "by identity resolution (phone, e-mail)."
    ),
    columns=(
        _c("lead_id", "id", "Lead id from the sales / marketing system; an internal id, not personal data."),
        _c(
            "created_at",
            "timestamp",
            "When the lead was first recorded; ISO 8601 with UTC offset. A restatement keeps it.",
        ),
        _c("source", "enum", "Where the lead came from.", allowed=LEAD_SOURCES, lower=True),
        _c("organisation", "text", "Company or person the lead is about, as entered. Personal data.", pii=True),
        _c("contact_name", "text", "Person sales talks to, as entered. Personal data.", pii=True),
        _c("phone", "id", "Contact phone number as entered (any format). Personal data.", required=False, pii=True),
        _c("email", "id", "Contact e-mail address as entered (any case). Personal data.", required=False, pii=True),
        _c(
            "kind",
            "enum",
            "Prospect kind by nature.",
            allowed=("individual", "enterprise", "government", "partner"),
            lower=True,
        ),
        _c("region", "text", "Province-level region (Chinese name)."),
        _c("industry", "enum", "Industry code for organisations; empty for individuals.", required=False, lower=True),
        _c(
            "declared_budget",
            "money",
            "Budget the prospect stated for the purchase, CNY; empty if not stated (money evidence).",
            required=False,
            min=0,
            domain_reason="NON_POSITIVE_AMOUNT",
        ),
        _c(
            "credit_rating",
            "enum",
            "Credit-bureau rating (A best .. D worst, 'unknown': no record); empty if not checked (money evidence).",
            required=False,
            allowed=CREDIT_RATINGS,
        ),
        _c(
            "contact_role",
            "enum",
            "Role of the contact in the purchase decision (authority evidence).",
            allowed=CONTACT_ROLES,
            lower=True,
        ),
        _c(
            "need",
            "enum",
            "Need the prospect expressed: none, interest, stated_need (a concrete requirement), urgent.",
            allowed=NEED_LEVELS,
            lower=True,
        ),
        _c("requested_quote", "bool", "The prospect asked for a quote (need evidence)."),
    ),
    key=("lead_id",),
    event_column="created_at",
    immutable=False,
    customer_column=None,
)

#: Every feed, in load order: customers first, so that the other feeds can check
#: their customer references against it.
FEEDS: dict[str, FeedContract] = {f.name: f for f in (CUSTOMERS, ORDERS, PAYMENTS, SURVEYS, INTERACTIONS, LEADS)}
