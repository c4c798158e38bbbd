"""Schema.org JSON-LD for search engines: the clinic as a MedicalClinic, articles as MedicalWebPage/Article."""

from django.conf import settings

from articles.models import Article

CLINIC_ID = "#clinic"


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _person(practitioner) -> dict:
    return {"@type": "Person", "name": practitioner.full_name, "jobTitle": practitioner.profession}


def clinic_entity() -> dict:
    return {
        "@type": "MedicalClinic",
        "@id": _absolute("/" + CLINIC_ID),
        "name": settings.CLINIC_NAME,
        "url": _absolute("/"),
        "telephone": settings.CLINIC_PHONE,
        "email": settings.CLINIC_EMAIL,
        "address": {"@type": "PostalAddress", "streetAddress": settings.CLINIC_ADDRESS},
        "openingHours": settings.CLINIC_OPENING_HOURS,
        "medicalSpecialty": "Physiotherapy",
    }


def home_graph() -> dict:
    return {"@context": "https://schema.org", "@graph": [clinic_entity()]}


def article_graph(article: Article) -> dict:
    """1. The page (MedicalWebPage), which carries the medical review. 2. The article it is about. 3. The clinic."""
    url = _absolute(article.get_absolute_url())
    clinic_ref = {"@id": _absolute("/" + CLINIC_ID)}
    article_entity = {
        "@type": "Article",
        "@id": url + "#article",
        "headline": article.title,
        "description": article.summary,
        "url": url,
        "datePublished": article.published_at.isoformat() if article.published_at else None,
        "dateModified": article.updated_at.isoformat(),
        "author": _person(article.author) if article.author else clinic_ref,
        "publisher": clinic_ref,
        "about": [topic.name for topic in article.topics.all()],
        "mainEntityOfPage": {"@id": url},
    }
    page = {
        "@type": "MedicalWebPage",
        "@id": url,
        "url": url,
        "name": article.title,
        "description": article.summary,
        "datePublished": article_entity["datePublished"],
        "dateModified": article_entity["dateModified"],
        "mainEntity": {"@id": article_entity["@id"]},
        "publisher": clinic_ref,
        "audience": {"@type": "Patient"},
    }
    if article.reviewer:
        page["reviewedBy"] = _person(article.reviewer)
    if article.reviewed_on:
        page["lastReviewed"] = article.reviewed_on.isoformat()
    return {"@context": "https://schema.org", "@graph": [page, article_entity, clinic_entity()]}
