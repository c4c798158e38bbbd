"""Schema.org JSON-LD for search engines: the clinic as a MedicalClinic, articles as MedicalWebPage/Article,
an article's FAQ section as an FAQPage."""

import re

from django.conf import settings

from articles.models import Article
from articles.rendering import faq_entries

CLINIC_ID = "#clinic"


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _person(practitioner) -> dict:
    return {"@type": "Person", "name": practitioner.full_name, "jobTitle": practitioner.profession}


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)[a-z]*"
_TIME = r"(\d{1,2})[:.](\d{2})"
# "Monday to Friday 08:30-18:00", "Sat 09:00-12:30", "Mon-Thu: 8.30 to 18.00": one period of days and times.
_PERIOD = re.compile(rf"{_DAY}(?:\s*(?:to|-|–)\s*{_DAY})?\s*:?\s*{_TIME}\s*(?:to|-|–)\s*{_TIME}", re.IGNORECASE)
UK_POSTCODE = re.compile(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}", re.IGNORECASE)


def opening_hours_specification(text: str) -> list[dict]:
    """CLINIC_OPENING_HOURS as schema.org OpeningHoursSpecification, or [] when it cannot be read whole.

    Periods are separated by ";" or "," (e.g. "Monday to Friday 08:30-18:00; Saturday 09:00-12:00").
    A text this cannot read gives no opening hours at all rather than wrong ones; `manage.py check`
    warns about it (articles/apps.py).
    """
    specification = []
    for part in re.split(r"[;,]|\band\b", text):
        if not part.strip():
            continue
        match = _PERIOD.fullmatch(part.strip())
        if not match:
            return []
        first, last, open_hour, open_minute, close_hour, close_minute = match.groups()
        first_index = [day[:3].lower() for day in DAYS].index(first.lower())
        last_index = [day[:3].lower() for day in DAYS].index((last or first).lower())
        opens, closes = (int(open_hour), int(open_minute)), (int(close_hour), int(close_minute))
        minutes_valid = opens[1] < 60 and closes[1] < 60
        if last_index < first_index or not minutes_valid or not opens < closes <= (24, 0):
            return []
        specification.append(
            {
                "@type": "OpeningHoursSpecification",
                "dayOfWeek": DAYS[first_index : last_index + 1],
                "opens": f"{opens[0]:02d}:{opens[1]:02d}",
                "closes": f"{closes[0]:02d}:{closes[1]:02d}",
            }
        )
    return specification


def postal_address(text: str) -> dict:
    """CLINIC_ADDRESS ("12 Example Street, London, N1 1AA") as a PostalAddress, split where it can be."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if len(parts) >= 3 and UK_POSTCODE.fullmatch(parts[-1]):
        return {
            "@type": "PostalAddress",
            "streetAddress": ", ".join(parts[:-2]),
            "addressLocality": parts[-2],
            "postalCode": parts[-1].upper(),
            "addressCountry": "GB",
        }
    return {"@type": "PostalAddress", "streetAddress": text}


def international_phone(number: str) -> str:
    """A UK number as dialled from abroad ("020 7946 0000" -> "+44 20 7946 0000"), as search engines want it."""
    if number.startswith("0") and not number.startswith("00"):
        return "+44 " + number[1:]
    return number


def clinic_entity() -> dict:
    entity = {
        "@type": "MedicalClinic",
        "@id": _absolute("/" + CLINIC_ID),
        "name": settings.CLINIC_NAME,
        "url": _absolute("/"),
        "telephone": international_phone(settings.CLINIC_PHONE),
        "email": settings.CLINIC_EMAIL,
        "address": postal_address(settings.CLINIC_ADDRESS),
        "medicalSpecialty": "Physiotherapy",
    }
    hours = opening_hours_specification(settings.CLINIC_OPENING_HOURS)
    if hours:
        entity["openingHoursSpecification"] = hours
    return entity


def home_graph() -> dict:
    return {"@context": "https://schema.org", "@graph": [clinic_entity()]}


def contact_graph(contact_path: str) -> dict:
    """The Contact page, about the clinic: its address, telephone and opening hours for search engines."""
    url = _absolute(contact_path)
    page = {
        "@type": "ContactPage",
        "@id": url,
        "url": url,
        "name": f"Contact {settings.CLINIC_NAME}",
        "about": {"@id": _absolute("/" + CLINIC_ID)},
    }
    return {"@context": "https://schema.org", "@graph": [page, clinic_entity()]}


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
    graph = [page, article_entity, clinic_entity()]
    faq = faq_page(article, url=url)
    if faq:
        graph.append(faq)
    return {"@context": "https://schema.org", "@graph": graph}


def faq_page(article: Article, *, url: str) -> dict | None:
    """The article's FAQ section (its questions and answers as written) as an FAQPage, or None without one."""
    questions = [
        {"@type": "Question", "name": question, "acceptedAnswer": {"@type": "Answer", "text": answer}}
        for question, answer in faq_entries(article.body_html)
    ]
    if not questions:
        return None
    return {"@type": "FAQPage", "@id": url + "#faq", "url": url, "name": article.title, "mainEntity": questions}
