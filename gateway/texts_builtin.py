"""The built-in customer texts in more languages than English.

A text an admin left at its default (``[texts]`` does not set it) is shown in the
conversation's language when it is one of these, else in ``gateway.default_language``
when that is, else in English: so a desk whose customers write Russian, and whose
admin wrote only the greeting, does not send them an English reminder.
"""

from __future__ import annotations

BUILTIN: dict[str, dict[str, str]] = {
    "card_hidden": {
        "ru": "Ради вашей безопасности мы скрыли номер карты, который вы прислали: он нам "
        "никогда не нужен. Пожалуйста, не отправляйте данные карты в этот чат.",
        "uk": "Задля вашої безпеки ми приховали номер картки, який ви надіслали: він нам "
        "ніколи не потрібен. Будь ласка, не надсилайте дані картки в цей чат.",
        "de": "Zu Ihrer Sicherheit haben wir die gesendete Kartennummer ausgeblendet: Wir "
        "brauchen sie nie. Bitte senden Sie keine Kartendaten in diesem Chat.",
        "es": "Por su seguridad ocultamos el número de tarjeta que envió: nunca lo "
        "necesitamos. Por favor, no envíe datos de tarjetas en este chat.",
    },
    "greeting": {
        "ru": "Здравствуйте! Спасибо, что написали нам. Сотрудник нашей команды ответит здесь.",
        "uk": "Вітаємо! Дякуємо, що написали нам. Співробітник нашої команди відповість тут.",
        "de": "Hallo! Danke für Ihre Nachricht. Jemand aus unserem Team antwortet Ihnen hier.",
        "es": "¡Hola! Gracias por escribirnos. Alguien de nuestro equipo le responderá aquí.",
    },
    "queued": {
        "ru": "Все операторы сейчас заняты. Вы {position}-й в очереди.",
        "uk": "Усі оператори зараз зайняті. Ви {position}-й у черзі.",
        "de": "Alle unsere Mitarbeiter sind gerade beschäftigt. Sie sind Nummer {position} "
        "in der Warteschlange.",
        "es": "Todos nuestros agentes están ocupados. Usted es el número {position} en la cola.",
    },
    "assigned": {
        "ru": "Вам поможет {operator}.",
        "uk": "Вам допоможе {operator}.",
        "de": "{operator} hilft Ihnen weiter.",
        "es": "{operator} le ayudará con esto.",
    },
    "away": {
        "ru": "Сейчас никого из команды нет на месте. Мы получили ваше сообщение и ответим, "
        "как только кто-нибудь вернётся.",
        "uk": "Зараз нікого з команди немає на місці. Ми отримали ваше повідомлення й "
        "відповімо, щойно хтось повернеться.",
        "de": "Gerade ist niemand aus dem Team da. Wir haben Ihre Nachricht und antworten, "
        "sobald jemand zurück ist.",
        "es": "Ahora no hay nadie del equipo conectado. Tenemos su mensaje y le responderemos "
        "en cuanto alguien vuelva.",
    },
    "outside_hours": {
        "ru": "Спасибо за сообщение! Сейчас мы не работаем и откроемся {opens}; сотрудник "
        "нашей команды ответит вам тогда.",
        "uk": "Дякуємо за повідомлення! Зараз ми не працюємо й відкриємося {opens}; "
        "співробітник нашої команди відповість вам тоді.",
        "de": "Danke für Ihre Nachricht! Wir sind gerade geschlossen und öffnen wieder "
        "{opens}; dann antwortet Ihnen jemand aus unserem Team.",
        "es": "¡Gracias por su mensaje! Ahora estamos cerrados y abrimos de nuevo {opens}; "
        "entonces le responderá alguien de nuestro equipo.",
    },
    "still_working": {
        "ru": "Мы о вас не забыли: ваше сообщение у нашей команды, и ответ придёт сюда. "
        "Спасибо за терпение.",
        "uk": "Ми про вас не забули: ваше повідомлення в нашої команди, і відповідь прийде "
        "сюди. Дякуємо за терпіння.",
        "de": "Wir haben Sie nicht vergessen: Ihre Nachricht liegt bei unserem Team, und die "
        "Antwort kommt hierher. Danke für Ihre Geduld.",
        "es": "No le hemos olvidado: su mensaje está con nuestro equipo y recibirá la "
        "respuesta aquí. Gracias por su paciencia.",
    },
    "closed": {
        "ru": "Этот диалог закрыт. Пишите в любое время, если понадобится помощь.",
        "uk": "Цю розмову закрито. Пишіть будь-коли, якщо знадобиться допомога.",
        "de": "Dieses Gespräch ist jetzt abgeschlossen. Schreiben Sie jederzeit wieder, "
        "wenn Sie uns brauchen.",
        "es": "Esta conversación está cerrada. Escríbanos cuando quiera si nos necesita.",
    },
    "csat_ask": {
        "ru": "Как вы оцениваете нашу помощь? Ответьте числом от 1 (плохо) до 5 (отлично).",
        "uk": "Як ви оцінюєте нашу допомогу? Дайте відповідь числом від 1 (погано) до 5 (чудово).",
        "de": "Wie bewerten Sie unsere Hilfe? Antworten Sie mit einer Zahl von 1 (schlecht) "
        "bis 5 (ausgezeichnet).",
        "es": "¿Cómo valora nuestra ayuda? Responda con un número del 1 (mala) al 5 (excelente).",
    },
    "csat_comment": {
        "ru": "Спасибо! Если хотите, напишите одним сообщением, что нам стоит улучшить.",
        "uk": "Дякуємо! Якщо бажаєте, напишіть одним повідомленням, що нам варто покращити.",
        "de": "Danke! Wenn Sie mögen, schreiben Sie uns in einer Nachricht, was wir besser "
        "machen könnten.",
        "es": "¡Gracias! Si quiere, díganos en un mensaje qué podríamos mejorar.",
    },
    "csat_thanks": {
        "ru": "Спасибо за отзыв!",
        "uk": "Дякуємо за відгук!",
        "de": "Danke für Ihre Rückmeldung!",
        "es": "¡Gracias por su opinión!",
    },
    "transferred": {
        "ru": "Ваш диалог продолжит {operator}.",
        "uk": "Вашу розмову продовжить {operator}.",
        "de": "{operator} übernimmt Ihr Gespräch.",
        "es": "{operator} se hace cargo de su conversación.",
    },
    "faq_footer": {
        "ru": "Это автоматический ответ. Если он не помог, просто напишите ещё раз: вам "
        "ответит человек из нашей команды.",
        "uk": "Це автоматична відповідь. Якщо вона не допомогла, просто напишіть ще раз: "
        "вам відповість людина з нашої команди.",
        "de": "Dies ist eine automatische Antwort. Wenn sie nicht geholfen hat, schreiben Sie "
        "einfach noch einmal: Dann antwortet Ihnen ein Mensch aus unserem Team.",
        "es": "Esta es una respuesta automática. Si no le ayudó, escriba de nuevo: le "
        "responderá una persona de nuestro equipo.",
    },
    "faq_suggest": {
        "ru": "Вы имели в виду что-то из этого? Ответьте номером.",
        "uk": "Ви мали на увазі щось із цього? Дайте відповідь номером.",
        "de": "Meinten Sie eines davon? Antworten Sie mit der Nummer.",
        "es": "¿Quiso decir alguna de estas? Responda con su número.",
    },
    "faq_person": {
        "ru": "Ничего из этого: поговорить с человеком",
        "uk": "Нічого з цього: поговорити з людиною",
        "de": "Nichts davon: mit einem Menschen sprechen",
        "es": "Ninguna: hablar con una persona",
    },
    "faq_person_ack": {
        "ru": "Конечно: вам ответит человек из нашей команды.",
        "uk": "Звісно: вам відповість людина з нашої команди.",
        "de": "Gern: Ein Mensch aus unserem Team antwortet Ihnen hier.",
        "es": "Por supuesto: le responderá aquí una persona de nuestro equipo.",
    },
    "faq_feedback": {
        "ru": "Это автоматический ответ. Он помог? Ответьте 1, если да, или 0, чтобы "
        "поговорить с человеком.",
        "uk": "Це автоматична відповідь. Вона допомогла? Дайте відповідь 1, якщо так, або 0, "
        "щоб поговорити з людиною.",
        "de": "Dies ist eine automatische Antwort. Hat sie geholfen? Antworten Sie 1, wenn ja, "
        "oder 0, um mit einem Menschen zu sprechen.",
        "es": "Esta es una respuesta automática. ¿Le ayudó? Responda 1 si fue así, o 0 para "
        "hablar con una persona.",
    },
    "faq_helped": {
        "ru": "Да, это помогло",
        "uk": "Так, це допомогло",
        "de": "Ja, das hat geholfen",
        "es": "Sí, me ayudó",
    },
    "web_intro": {
        "ru": "Здравствуйте! Спросите нас о чём угодно: сотрудник нашей команды ответит здесь.",
        "uk": "Вітаємо! Запитайте нас про будь-що: співробітник нашої команди відповість тут.",
        "de": "Hallo! Fragen Sie uns alles: Jemand aus unserem Team antwortet Ihnen hier.",
        "es": "¡Hola! Pregúntenos lo que quiera: alguien de nuestro equipo le responderá aquí.",
    },
    "web_closed": {
        "ru": "Сейчас мы не работаем и откроемся {opens}.",
        "uk": "Зараз ми не працюємо й відкриємося {opens}.",
        "de": "Wir sind gerade geschlossen und öffnen wieder {opens}.",
        "es": "Ahora estamos cerrados y abrimos de nuevo {opens}.",
    },
    "web_contact": {
        "ru": "Сейчас никто не может ответить сразу. Оставьте email, и мы напишем вам туда, "
        "если вы уже уйдёте.",
        "uk": "Зараз ніхто не може відповісти одразу. Залиште email, і ми напишемо вам туди, "
        "якщо ви вже підете.",
        "de": "Gerade kann niemand sofort antworten. Hinterlassen Sie Ihre E-Mail, dann "
        "schreiben wir Ihnen dorthin, falls Sie schon weg sind.",
        "es": "Ahora nadie puede responder al momento. Déjenos su correo y le escribiremos "
        "allí si ya se ha ido.",
    },
    "web_contact_thanks": {
        "ru": "Спасибо! Если вы уйдёте, мы ответим на {email}.",
        "uk": "Дякуємо! Якщо ви підете, ми відповімо на {email}.",
        "de": "Danke! Falls Sie weg sind, antworten wir an {email}.",
        "es": "¡Gracias! Si se ha ido, le responderemos a {email}.",
    },
}


def builtin(name: str, language: str | None, default_language: str) -> str | None:
    """The built-in text ``name`` in the conversation's language (exact, then its
    base: pt-BR, pt), else in the desk's default one; None: English, the default."""
    variants = BUILTIN.get(name, {})
    for wanted in (language, default_language):
        if not wanted:
            continue
        base = wanted.split("-", 1)[0].lower()
        if base == "en":
            return None
        if base in variants:
            return variants[base]
    return None
