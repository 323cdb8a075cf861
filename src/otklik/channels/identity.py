"""Identity helpers shared by messenger plugins: a phone number the messenger itself vouches for.

Telegram (a `contact` message whose `user_id` is the sender) and MAX (a `contact` attachment whose
`max_info.user_id` is the sender, from a `request_contact` button) tell us the number belongs to the person
writing. That makes it a verified phone identity: a customer who holds the number verified (a call, WhatsApp, an
earlier contact) and the messenger user become one customer; an unverified holder is only suggested.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from otklik.customers import service as customers
from otklik.customers.identities import normalise_identity
from otklik.customers.suggestions import link_verified_identity
from otklik.platform.errors import DomainError


def link_verified_phone(session: Session, workspace_id: int, *, kind: str, external_id: str, name: str,
                        phone_raw: str) -> bool:
    """Attach the verified phone to the messenger user's customer. If another customer holds the number
    *verified* (a call, WhatsApp, an earlier contact), the two are one person and are merged; if another holds
    it unverified (typed into a form, entered by hand), nothing moves and the agent sees a suggestion: an
    unproven claim never pulls a stranger's history in. Returns False when the number is not a phone number."""
    try:
        phone = normalise_identity("phone", phone_raw)[1]
    except DomainError:
        return False
    me, _ = customers.resolve_or_create(session, workspace_id, kind=kind, external_id=external_id, name=name,
                                        verified=True)
    link_verified_identity(session, workspace_id, me.id, kind="phone", value=phone)
    return True
