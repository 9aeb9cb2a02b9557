"""Language packs: one per language Amazon sends seller notices in, each with the same labels."""

from __future__ import annotations

import json
import tomllib

import pytest

from complaint_triage.pipeline.nlp.build import pack_paths
from complaint_triage.resources import config_dir

PATTERNS = config_dir() / "patterns"
LANGUAGES = {"en", "de", "fr", "es", "it", "ja", "nl", "pl", "sv", "tr", "pt", "ar"}
# What a notice in any language needs read: identifiers' labels, claim types, the kinds' cues, and
# the function words that name the language (LANG).
REQUIRED_LABELS = {
    "LANG",
    "CUE_ASIN",
    "CUE_COMPLAINT_ID",
    "CUE_REGISTRATION",
    "CUE_TRADEMARK_NAME",
    "CUE_CONTACT",
    "CLAIM_TRADEMARK",
    "CLAIM_COPYRIGHT",
    "CLAIM_PATENT",
    "CLAIM_DESIGN",
    "CLAIM_COUNTERFEIT",
    "KIND_REMOVAL",
    "KIND_NOT_REMOVED",
    "KIND_DEACTIVATION",
    "KIND_AT_RISK",
    "KIND_INAUTHENTIC",
    "KIND_DOCUMENTS_REQUESTED",
    "KIND_RELAYED",
    "KIND_SUSPECTED",
    "KIND_RETRACTION",
    "KIND_REINSTATEMENT",
    "KIND_INFORMATIONAL",
}


def _rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_there_is_one_pack_per_language():
    assert {path.stem for path in pack_paths(PATTERNS)} == LANGUAGES


@pytest.mark.parametrize("path", pack_paths(PATTERNS), ids=lambda p: p.stem)
def test_every_pack_has_every_label_and_tags_its_patterns(path):
    rows = _rows(path)
    assert REQUIRED_LABELS - {row["label"] for row in rows} == set()
    assert {row.get("id") for row in rows} == {path.stem}


def test_the_marketplace_table_covers_every_store():
    stores = tomllib.loads((config_dir() / "domain" / "marketplaces.toml").read_text(encoding="utf-8"))[
        "stores"
    ]
    wanted = {
        "amazon.com",
        "amazon.ca",
        "amazon.com.mx",
        "amazon.com.br",
        "amazon.co.uk",
        "amazon.de",
        "amazon.fr",
        "amazon.it",
        "amazon.es",
        "amazon.nl",
        "amazon.com.be",
        "amazon.pl",
        "amazon.se",
        "amazon.com.tr",
        "amazon.ae",
        "amazon.sa",
        "amazon.eg",
        "amazon.in",
        "amazon.co.jp",
        "amazon.com.au",
        "amazon.sg",
        "amazon.ie",
        "amazon.co.za",
    }
    assert wanted - set(stores) == set()


@pytest.mark.parametrize(
    "text, language",
    [
        (
            "We hebben je aanbiedingen verwijderd omdat de rechthebbende een melding heeft gedaan over het handelsmerk.",
            "nl",
        ),
        (
            "Usunęliśmy niektóre z Twoich ofert, ponieważ otrzymaliśmy zgłoszenie od właściciela praw do znaku towarowego.",
            "pl",
        ),
        (
            "Vi har tagit bort några av dina erbjudanden eftersom vi har fått en anmälan från en rättighetsinnehavare.",
            "sv",
        ),
        (
            "Bir hak sahibinden bildirim aldığımız için bazı liste kayıtlarınızı kaldırdık ve bu bir uyarıdır.",
            "tr",
        ),
        ("Desativamos o seu anúncio porque recebemos uma denúncia de um titular de direitos da marca.", "pt"),
        (
            "قمنا بإزالة بعض عروضك لأننا تلقينا بلاغًا من أحد مالكي الحقوق يفيد بأنها قد تنتهك علامته التجارية.",
            "ar",
        ),
    ],
)
def test_a_packs_function_words_name_its_language(triager, text, language):
    from complaint_triage.pipeline.extract import entities_from_doc

    entities = entities_from_doc(triager.nlp(text), None)
    assert max(entities.languages, key=entities.languages.get) == language
