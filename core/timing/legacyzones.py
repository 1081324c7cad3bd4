"""Zone names that are no place: refused, each with the regional zone to use instead.

A schedule's zone says where its wall clock hangs. Names that describe an
offset or an abbreviation rather than a place read as if they did and quietly
mean something else: ``EST`` is UTC-05:00 all year, so a job written for
"9:00 EST" runs at 10:00 New York time all summer; ``Etc/GMT+5`` is UTC-05:00
too (POSIX signs are inverted); ``GMT`` is UTC, not London. The backward
compatibility aliases (``US/Eastern``, ``GB``, ``Japan``) name places, but are
deprecated by the tz database itself and each has one current name.

So only Area/Location names under a continent or ocean are accepted, plus
``UTC`` and ``Etc/UTC`` (the same zone; the second is what Debian and many
container images report). Everything else the tz database lists is refused
with a message from this module that suggests the regional zone.
"""
from __future__ import annotations

import re
from typing import Final

REGION_AREAS: Final = frozenset({"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic",
                                 "Australia", "Europe", "Indian", "Pacific"})
UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC"})

# Abbreviation-named zones: what the name really is, and the place it is usually meant for.
_NOT_PLACES: Final = {
    "EST": ("is UTC-05:00 all year, never EDT", "America/New_York",
            " (or 'America/Panama' for UTC-05:00 all year)"),
    "MST": ("is UTC-07:00 all year, never MDT", "America/Denver",
            " (or 'America/Phoenix', which keeps MST all year)"),
    "HST": ("is an abbreviation, not a place", "Pacific/Honolulu", ""),
    "EST5EDT": ("is a legacy POSIX-style rule, not a place", "America/New_York", ""),
    "CST6CDT": ("is a legacy POSIX-style rule, not a place", "America/Chicago", ""),
    "MST7MDT": ("is a legacy POSIX-style rule, not a place", "America/Denver", ""),
    "PST8PDT": ("is a legacy POSIX-style rule, not a place", "America/Los_Angeles", ""),
    "CET": ("is an abbreviation, not a place", "Europe/Berlin", " or the zone of your city"),
    "MET": ("is an abbreviation, not a place", "Europe/Berlin", " or the zone of your city"),
    "EET": ("is an abbreviation, not a place", "Europe/Athens", " or the zone of your city"),
    "WET": ("is an abbreviation, not a place", "Europe/Lisbon", " or the zone of your city"),
}

# Names of UTC other than the two accepted ones. "GMT" is the hazardous one:
# in the UK it means the local clock, which is BST all summer.
_UTC_ALIASES: Final = frozenset({
    "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "UCT", "Universal", "Zulu",
    "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "Etc/Greenwich", "Etc/UCT", "Etc/Universal", "Etc/Zulu",
})

# The tz database's backward-compatibility aliases, with their current names.
_ALIASES: Final = {
    "Brazil/Acre": "America/Rio_Branco", "Brazil/DeNoronha": "America/Noronha",
    "Brazil/East": "America/Sao_Paulo", "Brazil/West": "America/Manaus",
    "Canada/Atlantic": "America/Halifax", "Canada/Central": "America/Winnipeg",
    "Canada/Eastern": "America/Toronto", "Canada/Mountain": "America/Edmonton",
    "Canada/Newfoundland": "America/St_Johns", "Canada/Pacific": "America/Vancouver",
    "Canada/Saskatchewan": "America/Regina", "Canada/Yukon": "America/Whitehorse",
    "Chile/Continental": "America/Santiago", "Chile/EasterIsland": "Pacific/Easter",
    "Cuba": "America/Havana", "Egypt": "Africa/Cairo", "Eire": "Europe/Dublin",
    "GB": "Europe/London", "GB-Eire": "Europe/London", "Hongkong": "Asia/Hong_Kong",
    "Iceland": "Atlantic/Reykjavik", "Iran": "Asia/Tehran", "Israel": "Asia/Jerusalem",
    "Jamaica": "America/Jamaica", "Japan": "Asia/Tokyo", "Kwajalein": "Pacific/Kwajalein",
    "Libya": "Africa/Tripoli", "Mexico/BajaNorte": "America/Tijuana", "Mexico/BajaSur": "America/Mazatlan",
    "Mexico/General": "America/Mexico_City", "NZ": "Pacific/Auckland", "NZ-CHAT": "Pacific/Chatham",
    "Navajo": "America/Denver", "PRC": "Asia/Shanghai", "Poland": "Europe/Warsaw",
    "Portugal": "Europe/Lisbon", "ROC": "Asia/Taipei", "ROK": "Asia/Seoul", "Singapore": "Asia/Singapore",
    "Turkey": "Europe/Istanbul", "W-SU": "Europe/Moscow",
    "US/Alaska": "America/Anchorage", "US/Aleutian": "America/Adak", "US/Arizona": "America/Phoenix",
    "US/Central": "America/Chicago", "US/East-Indiana": "America/Indiana/Indianapolis",
    "US/Eastern": "America/New_York", "US/Hawaii": "Pacific/Honolulu",
    "US/Indiana-Starke": "America/Indiana/Knox", "US/Michigan": "America/Detroit",
    "US/Mountain": "America/Denver", "US/Pacific": "America/Los_Angeles", "US/Samoa": "Pacific/Pago_Pago",
}

# One populous place per whole-hour standard offset, for the Etc/GMT±N message.
_BY_OFFSET: Final = {
    -11: "Pacific/Pago_Pago", -10: "Pacific/Honolulu", -9: "America/Anchorage", -8: "America/Los_Angeles",
    -7: "America/Denver", -6: "America/Chicago", -5: "America/New_York", -4: "America/Halifax",
    -3: "America/Sao_Paulo", -2: "America/Noronha", -1: "Atlantic/Azores", 1: "Europe/Berlin",
    2: "Europe/Athens", 3: "Europe/Moscow", 4: "Asia/Dubai", 5: "Asia/Karachi", 6: "Asia/Dhaka",
    7: "Asia/Bangkok", 8: "Asia/Shanghai", 9: "Asia/Tokyo", 10: "Australia/Sydney", 11: "Pacific/Noumea",
    12: "Pacific/Auckland", 13: "Pacific/Tongatapu", 14: "Pacific/Kiritimati",
}
_ETC_OFFSET = re.compile(r"Etc/GMT([+-])([0-9]+)")


def is_regional(name: str) -> bool:
    """True for the names a schedule may use: Area/Location under a continent or ocean, and UTC."""
    return name in UTC_NAMES or ("/" in name and name.partition("/")[0] in REGION_AREAS)


def suggestion(name: str) -> str | None:
    """The regional zone to use instead of a refused tz database name."""
    if name in _NOT_PLACES:
        return _NOT_PLACES[name][1]
    if name in _UTC_ALIASES:
        return "UTC"
    offset = _etc_offset(name)
    if offset is not None:
        return _BY_OFFSET.get(offset, "UTC")
    return _ALIASES.get(name)


def refusal(name: str) -> str:
    """Why a tz database name that is not regional is refused, and what to use instead (one line)."""
    if name in _NOT_PLACES:
        what, place, other = _NOT_PLACES[name]
        return f"timezone: '{name}' {what}; use a regional zone such as '{place}'{other}"
    if name in _UTC_ALIASES:
        london = " (or 'Europe/London' for UK time, GMT in winter and BST in summer)" if "GMT" in name else ""
        return f"timezone: '{name}' is another name for UTC; use 'UTC'{london}"
    offset = _etc_offset(name)
    if offset is not None:
        sign = "+" if offset > 0 else "-"
        near = _BY_OFFSET.get(offset)
        example = f"e.g. '{near}', " if near else ""
        return (f"timezone: '{name}' is a fixed offset, UTC{sign}{abs(offset):02d}:00 all year (POSIX signs "
                f"are inverted), with no region and no daylight saving; use the zone of the place, "
                f"{example}or 'UTC'")
    current = _ALIASES.get(name)
    if current:
        return f"timezone: '{name}' is a deprecated alias; use '{current}'"
    return f"timezone: '{name}' is not a regional zone; use an Area/Location name such as 'Europe/Berlin'"


def _etc_offset(name: str) -> int | None:
    """The UTC offset in hours of ``Etc/GMT+N`` (which is UTC-N), or None."""
    match = _ETC_OFFSET.fullmatch(name)
    if match is None or int(match[2]) == 0:
        return None
    return -int(match[2]) if match[1] == "+" else int(match[2])
