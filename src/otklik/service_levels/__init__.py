"""Service levels above the conversations domain: automation rules and macros (issue 13).

Rules react to the events conversations publishes after commit (`message.created`, `conversation.created`,
`conversation.updated`, `sla.warning`, `sla.breached`, the assistant's `assistant.handoff`) and to a periodic
sweep (time-based rules); they act through `conversations.service` as the system actor kind "rule". Macros are
named sets of the same actions an agent applies in one click. See docs/service-levels.md, «Rules and macros».
"""
