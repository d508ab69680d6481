"""Locale-aware filters from Babel, in the recipient's locale and timezone.

The render context carries the locale and timezone under LOCALE_KEY / TIMEZONE_KEY
(set by build_context); a filter falls back to English and UTC without them.
"""

import zoneinfo
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from jinja2 import pass_context

LOCALE_KEY = "_notify_locale"
TIMEZONE_KEY = "_notify_timezone"


def _locale(context) -> Locale:
    code = str(context.get(LOCALE_KEY) or "en").replace("-", "_")
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(code.split("_")[0]) if "_" in code else Locale("en")


def _timezone(context):
    try:
        return zoneinfo.ZoneInfo(str(context.get(TIMEZONE_KEY) or "UTC"))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _number(value):
    if isinstance(value, int | float | Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def _moment(value) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=zoneinfo.ZoneInfo("UTC"))


@pass_context
def number_format(context, value, decimals: int | None = None) -> str:
    number = _number(value)
    if decimals is None:
        return babel_numbers.format_decimal(number, locale=_locale(context))
    pattern = "#,##0" + ("." + "0" * int(decimals) if int(decimals) > 0 else "")
    return babel_numbers.format_decimal(number, format=pattern, locale=_locale(context))


@pass_context
def format_currency(context, value, currency: str = "EUR") -> str:
    return babel_numbers.format_currency(_number(value), str(currency), locale=_locale(context))


@pass_context
def format_datetime(context, value, format: str = "medium") -> str:
    return babel_dates.format_datetime(
        _moment(value), format, tzinfo=_timezone(context), locale=_locale(context)
    )


@pass_context
def format_date(context, value, format: str = "medium") -> str:
    local = _moment(value).astimezone(_timezone(context))
    return babel_dates.format_date(local.date(), format, locale=_locale(context))


FILTERS = {
    "number_format": number_format,
    "format_currency": format_currency,
    "format_datetime": format_datetime,
    "format_date": format_date,
}
