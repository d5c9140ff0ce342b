"""Which index values identify a person, and so are stored as blind indexes (keyed digests)
rather than in clear. Pure policy: `santinel.storage.sql.search.blind` applies it.

- The person types (Patient, RelatedPerson, Person): identifiers (INS/NIR, hospital numbers…),
  names, telecom (phone, email), address lines, city, postal code and state, birth date.
- Coverage identifiers (member numbers: in France, the NIR again).
- On every type, the identifiers of references (`subject:identifier=…|NIR`).

Kept in clear: codes, statuses, gender, dates other than the birth date, references (ids are
server-assigned pseudonyms), countries, and the directory types (Practitioner, Organization…:
public professional data, searched by name prefix). See the README, "Encryption at rest".
"""

from __future__ import annotations

from typing import Literal

Protection = Literal["name", "address", "identifier", "telecom", "birthdate"]

PERSON_TYPES = frozenset({"Patient", "RelatedPerson", "Person"})
PERSON_PARAMS: dict[str, Protection] = {
    "identifier": "identifier",
    "identifier:of-type": "identifier",
    "name": "name",
    "family": "name",
    "given": "name",
    "phonetic": "name",
    "telecom": "telecom",
    "phone": "telecom",
    "email": "telecom",
    "address": "address",
    "address-city": "address",
    "address-postalcode": "address",
    "address-state": "address",
    "birthdate": "birthdate",
}
OTHER_PARAMS: dict[tuple[str, str], Protection] = {
    ("Coverage", "identifier"): "identifier",
    ("Coverage", "identifier:of-type"): "identifier",
}
REFERENCE_IDENTIFIER = ":identifier"

# Protected parameters whose values the R4 expressions make values of other protected parameters
# too (`Patient.name` holds every `Patient.name.family` and `.given`; `phonetic` is
# `Patient.name` again; `Patient.address` holds `.city`, `.state` and `.postalCode`): a value
# another parameter of the same resource already indexes is not indexed again, and a search
# looks it up under both (`storage.sql.search.blind`). Each covering parameter's values are a
# subset of the covered one's, so "has rows under either" is still `:missing=false`.
COVERED_BY: dict[str, tuple[str, ...]] = {
    "name": ("family", "given"),
    "phonetic": ("family", "given", "name"),
    "address": ("address-city", "address-state", "address-postalcode"),
}
# Tokens that are `telecom` restricted to one system (`Patient.telecom.where(system='phone')`):
# answered from the `telecom` rows of that system (the system is stored in clear).
TELECOM_OF_SYSTEM: dict[str, str] = {"phone": "phone", "email": "email"}
TELECOM = "telecom"


def protection(resource_type: str, index_param: str) -> Protection | None:
    """How values of `index_param` (a parameter code, or a derived `<code>:of-type` /
    `<code>:identifier`) of `resource_type` are protected; None: indexed in clear."""
    if index_param.endswith(REFERENCE_IDENTIFIER):
        return "identifier"
    if resource_type in PERSON_TYPES:
        return PERSON_PARAMS.get(index_param)
    return OTHER_PARAMS.get((resource_type, index_param))


def blinded(resource_type: str, index_param: str, *, plaintext_names: bool) -> Protection | None:
    """`protection`, except names when the deployment keeps name indexes in clear."""
    kind = protection(resource_type, index_param)
    return None if kind == "name" and plaintext_names else kind
