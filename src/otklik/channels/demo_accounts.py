"""Example channel accounts for `make demo` (issue 18): Viber and Instagram present, switched off, with their
public settings filled as an example and no secrets, so Settings → Channels shows what to enter and where."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.channels.base import ChannelPlugin, new_webhook_token
from otklik.channels.instagram.plugin import PLUGIN as INSTAGRAM
from otklik.channels.models import ChannelAccount
from otklik.channels.viber.plugin import PLUGIN as VIBER

EXAMPLES: dict[str, dict[str, Any]] = {
    "viber": {"sender_name": "Сладкоежка", "welcome_text": "Здравствуйте! Напишите номер заказа или вопрос — "
                                                          "ответим в рабочее время.",
              "quick_replies": ["Где мой заказ?", "Позвать оператора"]},
    "instagram": {"account_id": "17841400000000000", "human_agent_tag": True,
                  "quick_replies": ["Где заказ?", "Доставка", "Оператор"]},
}


def add_demo_accounts(session: Session, workspace_id: int) -> None:
    """One disconnected account per kind (idempotent: an existing account of the kind is left alone)."""
    plugins: dict[str, ChannelPlugin] = {"viber": VIBER, "instagram": INSTAGRAM}
    for kind, example in EXAMPLES.items():
        plugin = plugins[kind]
        if session.scalar(select(ChannelAccount.id).where(ChannelAccount.workspace_id == workspace_id,
                                                          ChannelAccount.kind == kind).limit(1)) is not None:
            continue
        config = plugin.Config.model_validate(example).model_dump(mode="json")
        session.add(ChannelAccount(workspace_id=workspace_id, kind=kind, name="пример (не подключён)", config=config,
                                   secret=None, webhook_token=new_webhook_token(), state={}, enabled=False))
    session.flush()
