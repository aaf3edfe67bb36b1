"""Checks of an ODM 1.3.2 file: the official CDISC schema, and that every OID it references is defined.

The schema files are the ones the ``odmlib`` package ships (``odmlib/schemas/odm/1.3.2/``),
read with ``xmlschema``. An XML schema cannot check references by OID, so
``undefined_references`` does: each ``UserRef``, ``LocationRef``, ``SignatureRef``, each
``...Data`` element's OID and each ``...Ref`` of the metadata must name a definition in the file.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from xml.etree.ElementTree import Element, fromstring

import xmlschema

NS = "{http://www.cdisc.org/ns/odm/v1.3}"
ODM = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}  # for findall: root.findall(".//odm:ItemData", ODM)

#: (element, attribute) that references -> (element, attribute) that defines
REFERENCES = {
    ("UserRef", "UserOID"): ("User", "OID"),
    ("LocationRef", "LocationOID"): ("Location", "OID"),
    ("SiteRef", "LocationOID"): ("Location", "OID"),
    ("SignatureRef", "SignatureOID"): ("SignatureDef", "OID"),
    ("StudyEventData", "StudyEventOID"): ("StudyEventDef", "OID"),
    ("StudyEventRef", "StudyEventOID"): ("StudyEventDef", "OID"),
    ("FormData", "FormOID"): ("FormDef", "OID"),
    ("FormRef", "FormOID"): ("FormDef", "OID"),
    ("ItemGroupData", "ItemGroupOID"): ("ItemGroupDef", "OID"),
    ("ItemGroupRef", "ItemGroupOID"): ("ItemGroupDef", "OID"),
    ("ItemData", "ItemOID"): ("ItemDef", "OID"),
    ("ItemRef", "ItemOID"): ("ItemDef", "OID"),
    ("ClinicalData", "StudyOID"): ("Study", "OID"),
    ("AdminData", "StudyOID"): ("Study", "OID"),
    ("ClinicalData", "MetaDataVersionOID"): ("MetaDataVersion", "OID"),
    ("MetaDataVersionRef", "MetaDataVersionOID"): ("MetaDataVersion", "OID"),
}


@cache
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(files("odmlib") / "schemas" / "odm" / "1.3.2" / "ODM1-3-2.xsd"))


def valid_odm(text: str) -> Element:
    """The file's root element, once the CDISC ODM 1.3.2 schema has accepted it (else it raises)."""
    schema().validate(text)
    return fromstring(text.encode())


def undefined_references(root: Element) -> list[str]:
    """Every ``Element/@Attribute=value`` reference to an OID that no definition in the file has."""
    defined = {(tag, attribute): {e.get(attribute) for e in root.iter(NS + tag)} for tag, attribute in REFERENCES.values()}
    return sorted(
        f"{tag}/@{attribute}={e.get(attribute)}"
        for (tag, attribute), definition in REFERENCES.items()
        for e in root.iter(NS + tag)
        if e.get(attribute) not in defined[definition]
    )


def tag(element: Element) -> str:
    return element.tag.removeprefix(NS)
