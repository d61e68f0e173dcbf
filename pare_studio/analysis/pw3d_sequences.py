"""3DPW sequence lists used by the paper's evaluation protocol (spec §6.5).

The reference evaluates "3DPW test" on the ``3dpw-all`` npz and keeps only the samples whose
sequence is one of the 24 official test sequences; its "occluded" subset keeps the samples whose
sequence name starts with one of 17 ``<place>_<action>`` prefixes. The sequence of a sample is the
second-to-last component of its ``imgname`` (``imageFiles/<sequence>/image_00000.jpg``).
"""

from __future__ import annotations

#: The 24 official 3DPW test sequences (``pw3d_test_sequences`` of the reference), in its order.
PW3D_TEST_SEQUENCES: tuple[str, ...] = (
    "flat_packBags_00",
    "downtown_weeklyMarket_00",
    "outdoors_fencing_01",
    "downtown_walkBridge_01",
    "downtown_enterShop_00",
    "downtown_rampAndStairs_00",
    "downtown_bar_00",
    "downtown_runForBus_01",
    "downtown_cafe_00",
    "flat_guitar_01",
    "downtown_runForBus_00",
    "downtown_sitOnStairs_00",
    "downtown_bus_00",
    "downtown_arguing_00",
    "downtown_crossStreets_00",
    "downtown_walkUphill_00",
    "downtown_walking_00",
    "downtown_car_00",
    "downtown_warmWelcome_00",
    "downtown_upstairs_00",
    "downtown_stairs_00",
    "downtown_windowShopping_00",
    "office_phoneCall_00",
    "downtown_downstairs_00",
)

#: First two ``_``-separated tokens of the occluded sequences (``pw3d_occluded_sequences``).
PW3D_OCCLUDED_PREFIXES: tuple[str, ...] = (
    "courtyard_backpack",
    "courtyard_basketball",
    "courtyard_bodyScannerMotions",
    "courtyard_box",
    "courtyard_golf",
    "courtyard_jacket",
    "courtyard_laceShoe",
    "downtown_stairs",
    "flat_guitar",
    "flat_packBags",
    "outdoors_climbing",
    "outdoors_crosscountry",
    "outdoors_fencing",
    "outdoors_freestyle",
    "outdoors_golf",
    "outdoors_parcours",
    "outdoors_slalom",
)

_TEST = frozenset(PW3D_TEST_SEQUENCES)
_OCCLUDED = frozenset(PW3D_OCCLUDED_PREFIXES)


def sequence_of(imgname: str) -> str:
    """The sequence of a sample: the second-to-last path component of ``imgname`` ('' if none).

    ``'imageFiles/downtown_bar_00/image_00010.jpg'`` -> ``'downtown_bar_00'``. Both ``/`` and
    ``\\`` separate components.
    """
    parts = [p for p in str(imgname).replace("\\", "/").split("/")]
    return parts[-2] if len(parts) >= 2 else ""


def is_test_sequence(sequence: str) -> bool:
    """True for one of the 24 official 3DPW test sequences (exact name match)."""
    return sequence in _TEST


def is_occluded_sequence(sequence: str) -> bool:
    """True when the first two ``_`` tokens of ``sequence`` are an occluded-sequence prefix."""
    return "_".join(sequence.split("_")[:2]) in _OCCLUDED
