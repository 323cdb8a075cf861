"""What autogenerate must leave alone."""

from __future__ import annotations


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Keep autogenerate away from the search machinery the migrations create by hand."""
    if type_ == "table" and name and "_fts" in name:
        return False
    if type_ == "index" and name in {"ix_messages_search", "ix_customers_search", "ix_articles_search", "ix_faq_entries_search"}:
        return False
    return not (type_ == "column" and name == "search_vector")
