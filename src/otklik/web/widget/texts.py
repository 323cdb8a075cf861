"""Russian for the widget's admin pages (kept here, not in the shared catalog, so this page ships whole)."""

from __future__ import annotations

from collections.abc import Callable

RU = {
    "Chat widget": "Виджет чата",
    "Settings saved.": "Настройки сохранены.",
    "Widget is on": "Виджет включён",
    "Embed on your site": "Установка на сайт",
    "Paste this before </body> on every page of your site:": "Вставьте перед </body> на каждой странице сайта:",
    "Widget key": "Ключ виджета",
    "Appearance": "Внешний вид",
    "Main colour": "Основной цвет",
    "Text colour": "Цвет текста",
    "Position": "Положение",
    "right": "справа",
    "left": "слева",
    "Texts": "Тексты",
    "Title": "Заголовок",
    "Welcome message": "Приветствие в чате",
    "Offline message": "Текст, когда никого нет",
    "Launcher buttons": "Кнопки мультикнопки",
    "Shown": "Показывать",
    "Link or address": "Ссылка или адрес",
    "chat": "Чат на сайте",
    "callback": "Заказать звонок",
    "telegram": "Telegram",
    "vk": "ВКонтакте",
    "whatsapp": "WhatsApp",
    "max": "MAX",
    "email": "Email",
    "phone": "Телефон",
    "Quick replies (one per line)": "Быстрые кнопки (по одной в строке)",
    "Russian": "Русский",
    "English": "English",
    "Proactive greetings": "Проактивные приветствия",
    "One rule per line: URL pattern | delay in seconds | text in Russian | text in English. "
    "* matches anything, e.g. /catalog/* | 15 | Помочь с выбором? | Need help choosing?":
        "Одно правило в строке: шаблон адреса | задержка, с | текст по-русски | текст по-английски. "
        "* — любые символы, например /catalog/* | 15 | Помочь с выбором? | Need help choosing?",
    "Working hours": "Часы работы",
    "Always online": "Всегда на связи",
    "By the business calendar": "По рабочему календарю",
    "By own schedule (old setting)": "По своему расписанию (старая настройка)",
    "Calendar": "Календарь",
    "the workspace default": "основной календарь",
    "Calendars (holidays included)": "Календари (с праздниками)",
    "Offline form only": "Только офлайн-форма",
    "By schedule": "По расписанию",
    "Time zone": "Часовой пояс",
    "From": "С",
    "To": "До",
    "Mon": "Пн", "Tue": "Вт", "Wed": "Ср", "Thu": "Чт", "Fri": "Пт", "Sat": "Сб", "Sun": "Вс",
    "Allowed sites (one origin per line, e.g. https://shop.example; empty: any site)":
        "Разрешённые сайты (по одному в строке, например https://shop.example; пусто — любой сайт)",
    "Save": "Сохранить",
    "Preview": "Предпросмотр",
    "Open the demo page": "Открыть демо-страницу",
    "Identity verification": "Проверка личности",
    "identity_help": "Чтобы виджет узнавал вошедших покупателей, сервер сайта передаёт их id с подписью "
                     "HMAC-SHA256 секретом ниже. Без верной подписи данные не принимаются.",
    "identity_help_after": "Подпись считается на сервере сайта; секрет никогда не попадает в браузер.",
    "A secret is set.": "Секрет задан.",
    "No secret yet: identity claims are refused.": "Секрета ещё нет: данные о покупателе не принимаются.",
    "New secret": "Новый секрет",
    "Copy it now; it is not shown again. The previous secret no longer works.":
        "Скопируйте его сейчас — больше он не будет показан. Старый секрет перестал работать.",
    "Generate a new secret": "Создать новый секрет",
    "The form has errors:": "В форме есть ошибки:",
}


def translator(language: str) -> Callable[[str], str]:
    if language == "ru":
        return lambda text: RU.get(text, text)
    en = {"identity_help": "To recognise signed-in customers, your site's server passes their id signed with "
                           "HMAC-SHA256 and the secret below. Without a valid signature the claim is refused.",
          "identity_help_after": "Sign on your server; the secret never goes to the browser."}
    return lambda text: en.get(text, text)
