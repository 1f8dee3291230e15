"""Words customers use for the same thing, across English, Russian and Ukrainian.

Three or four example questions cannot hold every way of asking: one customer
asks what delivery "costs", the next what you "charge", a third "скільки
коштує". Each group below names one idea of customer support and online shops
with the words (any form; they are folded and stemmed like everything else) that
stand for it; a word in a group adds the group's mark to the question's and the
entry's words, so two texts that share an idea share a word even when they share
no letters. A word may stand in two groups. Admins add their own words per entry
(``keywords``); this is the part every desk shares.
"""

from __future__ import annotations

from functools import lru_cache

from gateway.faq_words import readings, stem

GROUPS: dict[str, str] = {
    "how_long": """
        long days time quickly quick fast soon takes wait waiting weeks
        срок сроки срока дней быстро скоро долго ждать неделю недели занимает идет
        термін терміни строки днів швидко скоро довго чекати тиждень триває йде займає
    """,
    "how_much": """
        much many сколько скока скільки скилки
    """,
    "when": "when когда коли",
    "where": "where где куда де куди",
    "cost": """
        cost costs price prices charge charges fee fees expensive cheap free paid
        стоит стоимость стоить стоят цена цены платная платно бесплатно бесплатная
        обойдется доплатить вартість коштує коштувати коштують ціна ціни платна
        безкоштовно безкоштовна доплатити
    """,
    "deliver": """
        deliver delivery delivered delivering shipping ship shipped send sends courier driver
        доставка доставки доставку доставить доставляете отправка отправить отправляете
        привезти привезут курьер курьеру доставити доставляєте відправка відправити
        відправляєте надіслати привезуть кур'єр кур'єру
    """,
    "abroad": """
        abroad international internationally country countries overseas worldwide
        foreign germany poland czech italy europe граница границу заграницу страна
        страны стран международная международную зарубеж германия германию польша
        польшу чехия чехию европу кордон країна країни країн міжнародна закордон
        німеччина німеччину польща польщу чехію італія італію європу
    """,
    "pickup": """
        pickup pick collect myself self самовывоз забрать заберу самостоятельно сам
        самому самовивіз забрати заберу самостійно
    """,
    "point": "point points пункт пункте пункта выдачи пункті видачі",
    "order": """
        order orders ordered заказ заказа заказы заказать заказала заказал замовлення
        замовити замовила замовив замовляла замовляв
    """,
    "parcel": "parcel package box посылка посылку посылки посилка посилку посилки пакунок",
    "track": "track tracking status отследить трек статус відстежити",
    "arrive": """
        arrive arrived arrives came пришел пришла пришло придет прийшов прийшла прийшло
        прийде
    """,
    "change": """
        change edit modify update correct fix изменить поменять исправить сменить
        обновить змінити поміняти виправити редагувати оновити
    """,
    "address": "address адрес адреса адресу",
    "add": "add добавить додати дописати",
    "cancel": """
        cancel cancellation отменить отмените отмена отказаться передумал передумала
        скасувати скасуйте скасування відмовитися
    """,
    "pay": """
        pay payment paying paid оплата оплатить оплаты платить заплатить платеж
        оплатити оплати платити заплатити розрахуватися розплатитися платіж
    """,
    "method": "method methods ways options способ способы варианты спосіб способи варіанти",
    "card": "card visa mastercard карта карту картой картка картку карткою",
    "failed": """
        fail fails failed error declined rejected through ошибка ошибку отклонен
        отклоняет проходит помилка помилку відхилено відхиляє проходить
    """,
    "cash": "cash наличные наличными наличка готівка готівку готівкою",
    "receive": """
        receive receiving arrives получении получу получения получить отриманні
        отримання отримаю отримати накладений наложенный
    """,
    "installments": """
        installment installments instalment instalments monthly credit split later
        рассрочка рассрочку кредит частями розстрочка розстрочку кредит частинами
    """,
    "invoice": "invoice vat счет счёт ндс фактура рахунок пдв фактуру",
    "company": """
        company business firm corporate accountant accounting юрлицо юридическое
        компания компанию фирма фирму бухгалтерия компанія компанію фірма фірму фоп
        бухгалтер бухгалтерія
    """,
    "return": """
        return returns returned back вернуть возврат возврата вернула сдать сдал
        повернути повернення повернула здати назад
    """,
    "money": "refund money деньги средства гроші кошти",
    "exchange": "exchange swap replace обменять обмен поменять обміняти обмін заміна",
    "size": """
        size colour color bigger smaller размер цвет больше меньше розмір колір більший
        менший
    """,
    "warranty": """
        warranty guarantee repair repaired service covered гарантия гарантии гарантийный
        ремонт сломался перестал починить гарантія гарантії гарантійний зламався
        полагодити відремонтувати
    """,
    "broken": """
        broken damaged cracked smashed crushed defective faulty брак разбит разбитый
        поврежден поврежденный сломан сломанный помят помята трещина зламаний
        пошкоджений пошкоджено розбитий розбита тріснутий пом'ятий
    """,
    "wrong": """
        wrong missing mixed другой недостает хватает інший вистачає бракує
    """,
    "promo": "promo promocode coupon discount code промокод купон скидка скидку знижка знижку код",
    "bonus": "bonus bonuses points loyalty cashback бонус бонусы баллы кешбэк бонуси бали",
    "password": "password login log sign access пароль войти зайти вход доступ увійти вхід",
    "account": "account profile cabinet аккаунт акаунт профиль кабинет учетная профіль кабінет",
    "delete": "delete remove erase close удалить удалите стереть видалити видаліть",
    "data": "data personal information данные персональные информацию дані персональні інформацію",
    "contact": "email mail gmail phone number почта почту телефон номер пошта пошту",
    "stock": """
        stock available availability sold restock наличии наличие появится поступление
        закончился наявності наявність з'явиться завезуть
    """,
    "gift": "gift present подарок подарочный подарочная подарунок подарунковий подарункова",
    "certificate": "certificate voucher сертификат сертификаты сертифікат сертифікати",
    "support": """
        support service operator call contact поддержка служба позвонить звонки
        связаться підтримка зателефонувати дзвінки зв'язатися
    """,
    "hours": "hours schedule работает график часы працює графік години",
    "store": "store stores shop shops showroom магазин магазина магазины магазину магазинів",
    "cheaper": """
        cheaper dropped drop down sale difference подешевел снизилась упала разница
        разницу подешевшав знизилася впала різниця різницю
    """,
    "newsletter": """
        newsletter newsletters emails spam sms notifications рассылка рассылки письма
        смс уведомления розсилка розсилки листи сповіщення
    """,
    "unsubscribe": "unsubscribe off отключить отписаться хватит вимкнути припиніть відписатися",
    "weekend": """
        weekend weekends saturday sunday holiday holidays выходные выходных выходной
        суббота субботу воскресенье праздники вихідні вихідних вихідний субота суботу
        неділя неділю свята
    """,
    "assembly": """
        assemble assembly install installation fitter fitters сборка сборку собрать
        соберете сборщик установка установить монтаж збирання зібрати збере збирач
        встановлення встановити
    """,
    "packaging": """
        wrap wrapping wrapped packaging pack упаковка упаковать упакуйте упаковку
        пакування упакувати запакувати
    """,
    "measure": """
        chart measurements table fit таблица таблицу сетка сетку таблиця таблицю сітка
        сітку мерки мірки
    """,
    "safe": """
        safe safety secure security fraud protected безопасно безопасность безопасный
        защищены мошенничество безпечно безпека безпечний захищені шахрайство
    """,
    "group_discount": """
        student students pensioner pensioners senior military студент студентам
        студентов студенческий пенсионер пенсионерам военным студентка студентів
        студентам студентський пенсіонер пенсіонерам військовим
    """,
    "call": """
        call calls ring звонок звонить позвонить позвонит звонки дзвінок дзвонити
        подзвонити подзвонить зателефонувати зателефонує телефонувати
    """,
    "old": "old used second старый старые старую подержанный старий старі старого вживаний",
    "trade_in": "trade trade-in зачет зачёт трейд залік",
    "preorder": """
        preorder reserve reservation released release предзаказ бронь забронировать
        выйдет передзамовлення бронювання забронювати вийде
    """,
    "receipt": "receipt receipts чек чека чеки квитанция квитанція квитанцію",
    "verification": """
        sms otp verification confirmation code смс подтверждения подтверждение код
        підтвердження
    """,
    "care": """
        wash washing clean cleaning care dry стирать стирка чистить уход ухаживать
        прати прання чистити догляд доглядати
    """,
    "wholesale": """
        wholesale bulk resell quantity опт оптом оптовый оптовые партия оптові оптовий
        партію
    """,
}


@lru_cache(maxsize=1)
def marks() -> dict[str, tuple[str, ...]]:
    """Each stem of a group's words, with the marks of the groups it is in."""
    found: dict[str, set[str]] = {}
    for group, text in GROUPS.items():
        for candidates in readings(text):
            found.setdefault(stem(candidates[0]), set()).add(f"~{group}")
    return {term: tuple(sorted(groups)) for term, groups in found.items()}
