"""Validators shared by several apps' serializers."""

import re

from rest_framework import serializers

LOCALE_PATTERN = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def validate_locale(value: str) -> str:
    if not LOCALE_PATTERN.match(value):
        raise serializers.ValidationError("Not a locale code such as 'en' or 'de-AT'.")
    return value
