"""A realistic demo organization: clients, tags, campaigns and a month of traffic.

Everything is generated in memory from one seeded ``random.Random`` and written
with core bulk inserts (``mensajero.db.bulk_insert``), so the same code runs on
SQLite and PostgreSQL and the default 3,000 messages (about 20,000 rows with
their attempts, timelines and ledger) take a second or two. For a given ``seed``
(and ``now``) the content is reproducible: names, phones, bodies, statuses,
timestamps and queue ids; row ids, provider external ids and the API key are not
(they must stay unique across demos).

The traffic follows how a physiotherapy clinic uses the product: daily batches
of session and payment reminders, booking confirmations and receipts sent one
by one, a handful of campaign send-outs, staff writing to patients by hand,
WhatsApp replies that open conversations in the inbox, and the usual delivery
noise (carrier failures, hard bounces, resends, a batch still in the queue).
"""

from __future__ import annotations

import html
import itertools
import math
import random
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import Table, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from mensajero.db import bulk_insert
from mensajero.models import (
    Campaign,
    Channel,
    ChannelConfig,
    Client,
    ClientTag,
    CommunicationLog,
    CommunicationType,
    ContentType,
    Conversation,
    ConversationStatus,
    CreditLedgerEntry,
    Direction,
    LedgerEntryKind,
    LogEvent,
    Message,
    MessageStatus,
    Tag,
    TimelineEventType,
    utcnow,
    uuid7,
)
from mensajero.services.organization import bootstrap
from mensajero.settings import get_settings

ORGANIZATION_NAME = "Centro de Kinesiología Demo"
ORGANIZATION_TIMEZONE = "America/Santiago"
MEMBER_EMAIL = "demo@mensajero.local"
INITIAL_CREDITS = 100_000
# A top-up is recorded whenever the balance would fall below this (large demos only).
LOW_BALANCE = INITIAL_CREDITS // 10
HISTORY_DAYS = 30
ORGANIZATION_AGE_DAYS = 45

TZ = ZoneInfo(ORGANIZATION_TIMEZONE)
Event = TimelineEventType
Status = MessageStatus
Type = CommunicationType

# --- people -------------------------------------------------------------------------------

FIRST_NAMES = (
    "Juan", "María", "José", "Ana", "Luis", "Carmen", "Carlos", "Valentina", "Jorge", "Camila",
    "Andrés", "Daniela", "Felipe", "Sofía", "Diego", "Isabella", "Javier", "Fernanda", "Pablo",
    "Gabriela", "Sebastián", "Catalina", "Matías", "Paula", "Tomás", "Lucía", "Nicolás",
    "Mariana", "Alejandro", "Natalia", "Ricardo", "Francisca", "Martín", "Antonia", "Rodrigo",
    "Constanza", "Manuel", "Valeria", "Eduardo", "Javiera", "Gustavo", "Florencia", "Héctor",
    "Ximena", "Raúl", "Patricia", "Ignacio", "Rocío", "Cristián", "Verónica", "Mateo", "Renata",
    "Emilio", "Paola", "Santiago", "Claudia", "Hernán", "Lorena", "Agustín", "Teresa",
)  # fmt: skip
SURNAMES = (
    "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva", "Martínez",
    "Sepúlveda", "Morales", "Rodríguez", "López", "Fuentes", "Hernández", "Torres", "Araya",
    "Flores", "Espinoza", "Valenzuela", "Castillo", "Ramírez", "Reyes", "Gutiérrez", "Castro",
    "Vargas", "Álvarez", "Vásquez", "Tapia", "Fernández", "Sánchez", "Gómez", "Herrera",
    "Cortés", "Núñez", "Jiménez", "Romero", "Ruiz", "Mendoza", "Aguilar", "Ortiz", "Cárdenas",
    "Ríos", "Salazar", "Guerrero", "Medina", "Quispe", "Huamán", "Benítez", "Acosta", "Ospina",
    "Restrepo", "Cabrera", "Navarro", "Peña", "Bustos", "Carrasco", "Zúñiga", "Vega", "Molina",
)  # fmt: skip

COUNTRIES: tuple[tuple[str, int], ...] = (
    ("CL", 34),
    ("CO", 30),
    ("MX", 14),
    ("AR", 11),
    ("PE", 11),
)
CITIES: dict[str, tuple[tuple[str, int], ...]] = {
    "CL": (("Santiago", 70), ("Viña del Mar", 12), ("Concepción", 10), ("Valparaíso", 8)),
    "CO": (("Bogotá", 55), ("Medellín", 22), ("Cali", 13), ("Barranquilla", 10)),
    "MX": (("Ciudad de México", 50), ("Guadalajara", 20), ("Monterrey", 20), ("Puebla", 10)),
    "AR": (("Buenos Aires", 65), ("Córdoba", 15), ("Rosario", 12), ("Mendoza", 8)),
    "PE": (("Lima", 70), ("Arequipa", 12), ("Trujillo", 10), ("Cusco", 8)),
}
# Area codes and subscriber lengths where the city matters (Mexico, Argentina).
AREA_CODES: dict[str, tuple[str, int]] = {
    "Ciudad de México": ("55", 8),
    "Guadalajara": ("33", 8),
    "Monterrey": ("81", 8),
    "Puebla": ("222", 7),
    "Buenos Aires": ("11", 8),
    "Córdoba": ("351", 7),
    "Rosario": ("341", 7),
    "Mendoza": ("261", 7),
}
CO_MOBILE_PREFIXES = (
    "300", "301", "302", "304", "305", "310", "311", "312", "313", "314", "315", "316", "317",
    "318", "319", "320", "321", "322", "323", "350", "351",
)  # fmt: skip
EMAIL_DOMAINS: dict[str, tuple[tuple[str, int], ...]] = {
    "CL": (("gmail.com", 55), ("hotmail.com", 15), ("outlook.com", 10), ("live.cl", 8),
           ("yahoo.es", 5), ("uc.cl", 4), ("vtr.net", 3)),
    "CO": (("gmail.com", 55), ("hotmail.com", 20), ("outlook.com", 12), ("yahoo.com", 8),
           ("une.net.co", 5)),
    "MX": (("gmail.com", 50), ("hotmail.com", 22), ("outlook.com", 12), ("yahoo.com.mx", 10),
           ("live.com.mx", 6)),
    "AR": (("gmail.com", 55), ("hotmail.com", 20), ("yahoo.com.ar", 10), ("outlook.com", 10),
           ("fibertel.com.ar", 5)),
    "PE": (("gmail.com", 60), ("hotmail.com", 20), ("outlook.com", 12), ("yahoo.es", 8)),
}  # fmt: skip
CLIENT_SOURCES = (("import", 0), ("web", 45), ("referral", 25), ("walk_in", 20), ("instagram", 10))

# Tag name, color and the share of clients that carry it (location tags follow the city).
TAGS: tuple[tuple[str, str, float], ...] = (
    ("Pacientes", "#2563eb", 0.62),
    ("Recordatorios", "#059669", 0.42),
    ("VIP", "#d97706", 0.09),
    ("Bogotá", "#7c3aed", 0.0),
    ("Santiago", "#dc2626", 0.0),
    ("Inactivos", "#6b7280", 0.12),
    ("Nuevos", "#0891b2", 0.06),
    ("Deportistas", "#65a30d", 0.10),
    ("Postoperatorio", "#db2777", 0.07),
)
MAX_TAGS_PER_CLIENT = 3

# --- the clinic -------------------------------------------------------------------------------

PRACTITIONERS = (
    ("prov_001", "María González"),
    ("prov_002", "Felipe Rojas"),
    ("prov_003", "Camila Muñoz"),
    ("prov_004", "Andrés Soto"),
    ("prov_005", "Valentina Herrera"),
)
SERVICES = (
    "Kinesiología traumatológica",
    "Rehabilitación de rodilla",
    "Rehabilitación de hombro",
    "Kinesiología respiratoria",
    "Pilates clínico",
    "Evaluación kinésica",
    "Drenaje linfático",
)
SLOTS = tuple(time(hour, minute) for hour in range(8, 20) for minute in (0, 30))
PLANS = (("10 sesiones", 250_000), ("5 sesiones", 135_000), ("8 sesiones", 208_000))
PENDING_AMOUNTS = (28_000, 35_000, 45_000, 56_000, 62_500, 84_000, 125_000, 135_000)
PAYMENT_METHODS = ("Transferencia bancaria", "Tarjeta de débito", "Tarjeta de crédito", "Webpay")
WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS = (
    "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
    "octubre", "noviembre", "diciembre",
)  # fmt: skip
SITE = "https://kinedemo.cl"
CLINIC_PHONE = "+56 2 2345 6789"
ADDRESS = "Av. Providencia 1234, of. 502, Providencia"
SIGNATURE = "Saludos,\nCentro de Kinesiología Demo"


@dataclass(frozen=True, slots=True)
class CampaignDef:
    name: str
    description: str
    slug: str
    type: CommunicationType
    channels: tuple[Channel, ...]
    sendouts: int
    target_tag: str | None
    # Per channel: SMS/WhatsApp body, or (subject, body, (button label, url)) for email.
    sms: str = ""
    whatsapp: str = ""
    email: tuple[str, str, tuple[str, str]] | None = None


CAMPAIGNS: tuple[CampaignDef, ...] = (
    CampaignDef(
        name="Novedades: nueva sala de rehabilitación",
        description="Anuncio de la nueva sala de rehabilitación a toda la base de pacientes.",
        slug="sala-rehabilitacion",
        type=Type.CAMPAIGN,
        channels=(Channel.EMAIL, Channel.WHATSAPP),
        sendouts=1,
        target_tag=None,
        whatsapp=(
            "Hola {first} 👋 ¡Tenemos novedades! Inauguramos nuestra nueva sala de "
            "rehabilitación con equipamiento de última generación 🏋️ Agenda tu próxima sesión "
            "aquí: {site}/agenda"
        ),
        email=(
            "Conoce nuestra nueva sala de rehabilitación",
            "Hola {first},\n\nQueremos contarte que inauguramos nuestra nueva sala de "
            "rehabilitación, con equipamiento de última generación para que tus sesiones sean "
            "aún más efectivas.\n\nAgenda tu próxima hora y conócela.\n\n{signature}",
            ("Agendar hora", "{site}/agenda?utm_campaign=sala-rehabilitacion"),
        ),
    ),
    CampaignDef(
        name="Reactivación de pacientes inactivos",
        description=(
            "Pacientes sin sesiones en los últimos 90 días: 20% de descuento en su control."
        ),
        slug="reactivacion",
        type=Type.REACTIVATION,
        channels=(Channel.SMS, Channel.WHATSAPP, Channel.EMAIL),
        sendouts=2,
        target_tag="Inactivos",
        sms=(
            "Hola {first}, hace tiempo que no te vemos en el Centro de Kinesiologia. Agenda tu "
            "control con 20% de descuento: {site}/vuelve"
        ),
        whatsapp=(
            "Hola {first} 😊 Hace tiempo que no te vemos. ¿Cómo has estado? Si quieres retomar "
            "tus sesiones, este mes tienes 20% de descuento en tu control. Agenda aquí: "
            "{site}/vuelve"
        ),
        email=(
            "{first}, te extrañamos en el Centro",
            "Hola {first},\n\nHace tiempo que no te vemos y queremos saber cómo estás.\n\nSi "
            "quieres retomar tu tratamiento, este mes tu control tiene un 20% de descuento.\n\n"
            "{signature}",
            ("Agendar mi control", "{site}/vuelve?utm_campaign=reactivacion"),
        ),
    ),
    CampaignDef(
        name="Pilates clínico: clase de prueba gratis",
        description="Invitación a una clase de prueba de pilates clínico.",
        slug="pilates-prueba",
        type=Type.CAMPAIGN,
        channels=(Channel.EMAIL, Channel.SMS),
        sendouts=2,
        target_tag=None,
        sms=(
            "Centro Kine Demo: prueba gratis una clase de Pilates clinico este mes. Cupos "
            "limitados, reserva en {site}/pilates"
        ),
        email=(
            "Tu primera clase de Pilates clínico es gratis",
            "Hola {first},\n\nEl Pilates clínico fortalece tu core, mejora tu postura y previene "
            "lesiones. Este mes te invitamos a una clase de prueba sin costo.\n\nLos cupos son "
            "limitados: reserva el tuyo hoy.\n\n{signature}",
            ("Reservar clase gratis", "{site}/pilates?utm_campaign=pilates-prueba"),
        ),
    ),
    CampaignDef(
        name="Paquete 10 sesiones con 15% de descuento",
        description="Oferta del paquete de 10 sesiones para pacientes activos.",
        slug="paquete-10",
        type=Type.CAMPAIGN,
        channels=(Channel.WHATSAPP, Channel.SMS, Channel.EMAIL),
        sendouts=1,
        target_tag="Pacientes",
        sms=(
            "{first}, aprovecha: paquete de 10 sesiones de kinesiologia con 15% dcto. Valido "
            "hasta fin de mes. Info: {site}/paquetes"
        ),
        whatsapp=(
            "¡Hola {first}! 🎉 Este mes el paquete de *10 sesiones* tiene *15% de descuento*. "
            "Ideal para continuar tu tratamiento sin interrupciones. ¿Te reservamos uno?"
        ),
        email=(
            "Paquete de 10 sesiones con 15% de descuento",
            "Hola {first},\n\nPara que continúes tu tratamiento sin interrupciones, este mes el "
            "paquete de 10 sesiones tiene un 15% de descuento.\n\nPuedes pagarlo hasta en 3 "
            "cuotas sin interés.\n\n{signature}",
            ("Ver paquetes", "{site}/paquetes?utm_campaign=paquete-10"),
        ),
    ),
    CampaignDef(
        name="Encuesta de satisfacción",
        description="Encuesta breve a pacientes atendidos en el último mes.",
        slug="encuesta",
        type=Type.CAMPAIGN,
        channels=(Channel.EMAIL, Channel.SMS),
        sendouts=1,
        target_tag=None,
        sms=(
            "Hola {first}, ¿como fue tu experiencia en el Centro? Responde nuestra encuesta de 1 "
            "minuto: {site}/encuesta"
        ),
        email=(
            "¿Cómo fue tu experiencia con nosotros?",
            "Hola {first},\n\nTu opinión nos ayuda a mejorar. ¿Nos regalas un minuto para "
            "contarnos cómo fue tu experiencia en el Centro?\n\n¡Muchas gracias!\n\n{signature}",
            ("Responder encuesta", "{site}/encuesta?utm_campaign=encuesta"),
        ),
    ),
)

# --- message templates ------------------------------------------------------------------------
# SMS templates marked True are transliterated to GSM-7 (as SMS platforms do), the others keep
# their accents and go out as UCS-2 in more segments.

SMS_TEMPLATES: dict[CommunicationType, tuple[tuple[str, bool], ...]] = {
    Type.SESSION_REMINDER: (
        (
            "Hola {first}, te recordamos tu hora de {service} mañana {weekday} {day} de {month} "
            "a las {time} con {provider}. Responde C para confirmar o N para reagendar.",
            True,
        ),
        (
            "Recordatorio Centro de Kinesiologia: {first}, tienes hora de {service} el "
            "{short_date} a las {time} con {provider}. Si no puedes asistir avisanos al "
            "{clinic_phone}",
            True,
        ),
        (
            "{first}, mañana {weekday} a las {time} tienes tu sesión de {service} con {provider} "
            "en {address}. ¡Te esperamos!",
            False,
        ),
    ),
    Type.CONFIRMATION: (
        (
            "{first}, tu hora de {service} quedo agendada para el {weekday} {short_date} a las "
            "{time} con {provider}. Centro de Kinesiologia Demo",
            True,
        ),
        (
            "Reserva confirmada: {service} el {weekday} {day} de {month}, {time} hrs, con "
            "{provider}. Para cambios responde este mensaje.",
            False,
        ),
    ),
    Type.PAYMENT_REMINDER: (
        (
            "Hola {first}, te recordamos que tienes un saldo pendiente de {amount} en el Centro "
            "de Kinesiologia (venta N. {venta_number}). Paga en linea: {link}",
            True,
        ),
        (
            "{first}, tu plan de {plan} tiene un saldo pendiente de {amount}. Puedes pagar con "
            "transferencia o en {link}. Gracias!",
            True,
        ),
    ),
    Type.RECEIPT: (
        (
            "Recibimos tu pago de {amount} ({concept}). Gracias {first}! Comprobante N. "
            "{venta_number}",
            True,
        ),
    ),
    Type.MANUAL: (
        (
            "Hola {first}, intentamos llamarte pero no pudimos comunicarnos. Por favor "
            "contactanos al {clinic_phone}. Centro de Kinesiologia Demo",
            True,
        ),
        (
            "Hola {first}, soy {provider}. Recuerda hacer tus ejercicios en casa 2 veces al dia. "
            "Nos vemos en la proxima sesion!",
            True,
        ),
    ),
}
WHATSAPP_TEMPLATES: dict[CommunicationType, tuple[str, ...]] = {
    Type.SESSION_REMINDER: (
        "Hola {first} 👋\n\nTe recordamos tu hora de *{service_title}* mañana *{weekday} {day} de "
        "{month}* a las *{time}* con {provider}.\n\n📍 {address}.\n\nResponde *SÍ* para "
        "confirmar o *NO* si necesitas reagendar.",
        "¡Hola {first}! Mañana {weekday} a las {time} te espera {provider} para tu sesión de "
        "{service}. Recuerda traer ropa cómoda 🙂 ¿Nos confirmas tu asistencia?",
    ),
    Type.CONFIRMATION: (
        "¡Listo, {first}! ✅ Tu hora de *{service_title}* quedó agendada para el *{weekday} {day} "
        "de {month}* a las *{time}* con {provider}.\n\n¿Nos confirmas tu asistencia?",
        "Hola {first}, te confirmamos tu reserva 📅\n\n• Servicio: {service_title}\n• "
        "Profesional: {provider}\n• Fecha: {weekday} {day} de {month}, {time} hrs\n\nSi "
        "necesitas cambiar la hora, respóndenos por aquí.",
    ),
    Type.PAYMENT_REMINDER: (
        "Hola {first}, ¿cómo estás? 😊 Te escribimos para recordarte que tienes un saldo "
        "pendiente de *{amount}* correspondiente a tu plan de {plan}.\n\nPuedes pagar aquí: "
        "{link}\n\nSi ya pagaste, por favor ignora este mensaje 🙏",
    ),
    Type.RECEIPT: (
        "¡Gracias {first}! 🙌 Recibimos tu pago de *{amount}* por {concept}. Tu comprobante N° "
        "{venta_number} está disponible en {link}",
    ),
    Type.MANUAL: (
        "Hola {first}, soy {provider} del Centro de Kinesiología. ¿Cómo te has sentido después "
        "de la última sesión?",
        "Hola {first}, se nos liberó una hora mañana a las {time} con {provider}. ¿Te acomoda? 🙂",
        "{first}, te dejo los ejercicios para la casa: 3 series de 12 repeticiones, 2 veces al "
        "día. Cualquier molestia me avisas. {provider}",
    ),
}
# (subject, body, optional (button label, url)).
EMAIL_TEMPLATES: dict[CommunicationType, tuple[tuple[str, str, tuple[str, str] | None], ...]] = {
    Type.SESSION_REMINDER: (
        (
            "Recordatorio: tu sesión de {service} de mañana",
            "Hola {first},\n\nTe recordamos que tienes una sesión de {service} programada para "
            "mañana {weekday} {day} de {month} a las {time} con {provider}.\n\nTe pedimos llegar "
            "10 minutos antes y traer ropa cómoda.\n\nSi necesitas reagendar, responde este "
            "correo o llámanos al {clinic_phone}.\n\n{signature}",
            ("Confirmar asistencia", "{site}/sesiones/{session_id}/confirmar"),
        ),
        (
            "Te esperamos mañana {weekday} a las {time}",
            "Hola {first},\n\nMañana {weekday} {day} de {month} a las {time} te espera "
            "{provider} para tu sesión de {service}.\n\nDirección: {address}.\n\n{signature}",
            ("Ver mi reserva", "{site}/sesiones/{session_id}"),
        ),
    ),
    Type.CONFIRMATION: (
        (
            "Confirmación de tu hora: {weekday} {day} de {month}, {time} hrs",
            "Hola {first},\n\nTu hora quedó agendada con éxito.\n\nServicio: {service_title}\n"
            "Profesional: {provider}\nFecha: {weekday} {day} de {month} a las {time} hrs\n"
            "Dirección: {address}\n\nSi necesitas cambiar o cancelar tu hora, hazlo con al menos "
            "24 horas de anticipación.\n\n{signature}",
            ("Ver mi reserva", "{site}/sesiones/{session_id}"),
        ),
    ),
    Type.PAYMENT_REMINDER: (
        (
            "Recordatorio de pago pendiente: {amount}",
            "Hola {first},\n\nTe recordamos que tienes un saldo pendiente de {amount} asociado a "
            "tu plan de {plan} (venta N° {venta_number}).\n\nPuedes pagar en línea de forma "
            "segura o mediante transferencia bancaria.\n\nSi ya realizaste el pago, por favor "
            "ignora este mensaje.\n\n{signature}",
            ("Pagar ahora", "{link}"),
        ),
    ),
    Type.RECEIPT: (
        (
            "Comprobante de pago N° {venta_number}",
            "Hola {first},\n\nRecibimos tu pago de {amount} por {concept}.\n\nN° de comprobante: "
            "{venta_number}\nMedio de pago: {payment_method}\nFecha: {day} de {month} de {year}"
            "\n\nGracias por tu preferencia.\n\nCentro de Kinesiología Demo",
            ("Descargar comprobante", "{site}/comprobantes/{venta_id}.pdf"),
        ),
    ),
    Type.MANUAL: (
        (
            "Indicaciones para tu tratamiento",
            "Hola {first},\n\nTe envío las indicaciones que conversamos en la última sesión: "
            "aplicar frío local 15 minutos después de los ejercicios y mantener la rutina de "
            "elongación diaria.\n\nCualquier duda, me escribes.\n\nSaludos,\n{provider}\n"
            "Centro de Kinesiología Demo",
            None,
        ),
    ),
}

# Which communication types each channel carries, and how often.
TYPE_WEIGHTS: dict[Channel, tuple[tuple[CommunicationType, int], ...]] = {
    Channel.SMS: (
        (Type.SESSION_REMINDER, 42), (Type.CONFIRMATION, 14), (Type.PAYMENT_REMINDER, 14),
        (Type.CAMPAIGN, 16), (Type.REACTIVATION, 6), (Type.RECEIPT, 3), (Type.MANUAL, 5),
    ),
    Channel.WHATSAPP: (
        (Type.CONFIRMATION, 28), (Type.SESSION_REMINDER, 28), (Type.PAYMENT_REMINDER, 12),
        (Type.CAMPAIGN, 10), (Type.REACTIVATION, 6), (Type.RECEIPT, 4), (Type.MANUAL, 12),
    ),
    Channel.EMAIL: (
        (Type.RECEIPT, 28), (Type.CAMPAIGN, 24), (Type.SESSION_REMINDER, 18),
        (Type.CONFIRMATION, 12), (Type.PAYMENT_REMINDER, 10), (Type.REACTIVATION, 5),
        (Type.MANUAL, 3),
    ),
}  # fmt: skip
CHANNEL_WEIGHTS: tuple[tuple[Channel, int], ...] = (
    (Channel.SMS, 50),
    (Channel.WHATSAPP, 30),
    (Channel.EMAIL, 20),
)
PROVIDERS = {Channel.SMS: "twilio", Channel.WHATSAPP: "evolution", Channel.EMAIL: "resend"}
# Messages per second a worker pushes to each provider within one batch.
DISPATCH_RATE = {Channel.SMS: 30.0, Channel.WHATSAPP: 8.0, Channel.EMAIL: 40.0}

# Final outcome of a first attempt when nothing interrupts it.
OUTCOMES: dict[Channel, tuple[tuple[MessageStatus, int], ...]] = {
    Channel.SMS: ((Status.DELIVERED, 84), (Status.SENT, 7), (Status.UNDELIVERED, 5),
                  (Status.FAILED, 4)),
    Channel.WHATSAPP: ((Status.READ, 62), (Status.DELIVERED, 25), (Status.SENT, 8),
                       (Status.FAILED, 5)),
    Channel.EMAIL: ((Status.DELIVERED, 85), (Status.SENT, 6), (Status.BOUNCED, 6),
                    (Status.FAILED, 3)),
}  # fmt: skip
RESEND_OUTCOMES: dict[Channel, tuple[tuple[MessageStatus, int], ...]] = {
    Channel.SMS: ((Status.DELIVERED, 90), (Status.SENT, 10)),
    Channel.WHATSAPP: ((Status.READ, 70), (Status.DELIVERED, 30)),
    Channel.EMAIL: ((Status.DELIVERED, 100),),
}


@dataclass(frozen=True, slots=True)
class ProviderError:
    code: str
    message: str
    # Worth a resend (the provider or the network hiccuped, not the address).
    transient: bool


ERRORS: dict[tuple[Channel, MessageStatus], tuple[ProviderError, ...]] = {
    (Channel.SMS, Status.FAILED): (
        ProviderError("21211", "Invalid 'To' Phone Number", False),
        ProviderError("21610", "Attempt to send to unsubscribed recipient", False),
        ProviderError("20429", "Too Many Requests", True),
    ),
    (Channel.SMS, Status.UNDELIVERED): (
        ProviderError("30003", "Unreachable destination handset", True),
        ProviderError("30005", "Unknown destination handset", False),
        ProviderError("30006", "Landline or unreachable carrier", False),
        ProviderError("30008", "Unknown error", True),
    ),
    (Channel.WHATSAPP, Status.FAILED): (
        ProviderError("number_not_on_whatsapp", "The number is not registered on WhatsApp", False),
        ProviderError("instance_disconnected", "The WhatsApp instance is not connected", True),
        ProviderError("rate_limited", "Too many messages sent in a short period", True),
    ),
    (Channel.EMAIL, Status.FAILED): (
        ProviderError(
            "validation_error",
            "Invalid `to` field. The email address needs to follow the `email@example.com` format.",
            False,
        ),
        ProviderError(
            "daily_quota_exceeded", "You have reached your daily email sending quota.", True
        ),
    ),
    (Channel.EMAIL, Status.BOUNCED): (
        ProviderError("bounce_hard", "Mailbox does not exist", False),
        ProviderError("bounce_hard", "Mailbox does not exist", False),
        ProviderError("bounce_hard", "Mailbox does not exist", False),
        ProviderError("bounce_soft", "Mailbox full", False),
    ),
}

# Replies to WhatsApp messages: (text, the inbox category when it needs a human).
Reply = tuple[str, str | None]
SESSION_REPLIES: tuple[Reply, ...] = (
    ("Sí, confirmo", None),
    ("Confirmo, gracias!", None),
    ("Sí 👍", None),
    ("Ahí estaré 🙌", None),
    ("Perfecto, nos vemos", None),
    ("¿Puedo cambiar la hora para la tarde?", "reagendamiento"),
    ("No podré asistir, ¿podemos reagendar?", "reagendamiento"),
    ("Tengo que cancelar, me salió un viaje", "cancelacion"),
    ("¿Tengo que llevar algo especial?", "consulta"),
    ("¿La sesión la cubre la isapre?", "consulta"),
)
PAYMENT_REPLIES: tuple[Reply, ...] = (
    ("Ya hice la transferencia, les envío el comprobante", "pago"),
    ("¿Puedo pagar en dos cuotas?", "pago"),
    ("Pago el viernes, gracias", None),
    ("Gracias por avisar", None),
)
GENERIC_REPLIES: tuple[Reply, ...] = (
    ("Gracias!", None),
    ("Ok 👌", None),
    ("¿Cuál es el horario de atención del sábado?", "consulta"),
    ("Me interesa, ¿cómo agendo?", "consulta"),
)
REPLY_CHANCE = {
    Type.CONFIRMATION: 0.35,
    Type.SESSION_REMINDER: 0.22,
    Type.PAYMENT_REMINDER: 0.15,
    Type.MANUAL: 0.30,
    Type.REACTIVATION: 0.10,
    Type.CAMPAIGN: 0.05,
    Type.RECEIPT: 0.05,
}
AGENT_REPLIES: dict[str, tuple[str, ...]] = {
    "reagendamiento": (
        "¡Hola {first}! Claro, tenemos disponibilidad el {weekday} a las {time}. ¿Te acomoda?",
        "Hola {first}, sin problema. Te dejé agendada el {weekday} a las {time} con {provider} ✅",
    ),
    "cancelacion": ("Entendido {first}, cancelamos tu hora. Avísanos cuando quieras reagendar 🙂",),
    "consulta": (
        "Hola {first}, solo necesitas ropa cómoda; la sesión dura 45 minutos.",
        "Hola {first}, atendemos de lunes a viernes de 8:00 a 20:00 y los sábados de 9:00 a 14:00.",
        "Hola {first}, sí, emitimos boleta para reembolso en tu isapre o seguro.",
    ),
    "pago": (
        "Hola {first}, recibimos tu comprobante, ¡muchas gracias! 🙌",
        "Hola {first}, sí, puedes pagar el saldo en dos cuotas. Te envío el link de la primera.",
    ),
}
OUTCOMES_BY_CATEGORY: dict[str, tuple[str, ...]] = {
    "reagendamiento": ("sesion_reagendada", "sesion_reagendada", "sin_disponibilidad"),
    "cancelacion": ("sesion_cancelada", "sesion_reagendada"),
    "consulta": ("informacion_entregada",),
    "pago": ("pago_confirmado", "cuotas_acordadas"),
}
USER_AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; SM-A546E) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17726; Pro)",
)
IP_FIRST_OCTETS = (181, 186, 190, 191, 200, 201)

# Ordering of the lifecycle events (time never runs backwards along it).
EVENT_ORDER: dict[TimelineEventType, int] = {
    Event.CREATED: 0,
    Event.RECEIVED: 1,
    Event.QUEUED: 1,
    Event.SENT: 2,
    Event.DELIVERED: 3,
    Event.UNDELIVERED: 3,
    Event.BOUNCED: 3,
    Event.FAILED: 3,
    Event.READ: 4,
    Event.OPENED: 4,
    Event.CLICKED: 5,
    Event.RESPONSE: 6,
}
# The status an event moves an attempt to (engagement events move nothing).
EVENT_STATUS: dict[TimelineEventType, MessageStatus] = {
    Event.CREATED: Status.QUEUED,
    Event.QUEUED: Status.QUEUED,
    Event.SENT: Status.SENT,
    Event.DELIVERED: Status.DELIVERED,
    Event.READ: Status.READ,
    Event.UNDELIVERED: Status.UNDELIVERED,
    Event.BOUNCED: Status.BOUNCED,
    Event.FAILED: Status.FAILED,
    Event.RECEIVED: Status.RECEIVED,
}

# --- SMS segments ---------------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def sms_segments(body: str) -> int:
    """How many SMS parts a body takes: GSM-7 160/153 characters, UCS-2 70/67 code units."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENDED for char in body):
        units = len(body) + sum(char in GSM7_EXTENDED for char in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)


def _gsm_transliterate(text: str) -> str:
    """Drop the accents GSM-7 cannot encode (á -> a) and keep those it can (ñ, é)."""
    out = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENDED:
            out.append(char)
            continue
        stripped = unicodedata.normalize("NFKD", char)[0]
        out.append(stripped if stripped in GSM7_BASIC else char)
    return "".join(out)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in folded.lower() if char.isalnum())


def _clp(amount: int) -> str:
    return "$" + f"{amount:,}".replace(",", ".")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


def _local_moment(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=TZ).astimezone(UTC)


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined, no-any-return]


def _email_html(subject: str, body: str, button: tuple[str, str] | None) -> str:
    paragraphs = "".join(
        f'<p style="margin:0 0 16px">{html.escape(chunk).replace(chr(10), "<br>")}</p>'
        for chunk in body.split("\n\n")
    )
    cta = ""
    if button is not None:
        label, url = button
        cta = (
            f'<p style="margin:24px 0"><a href="{html.escape(url)}" style="background:#0f766e;'
            f'color:#ffffff;padding:12px 20px;border-radius:6px;text-decoration:none">'
            f"{html.escape(label)}</a></p>"
        )
    return (
        '<!doctype html><html lang="es"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject)}</title></head>"
        '<body style="margin:0;background:#f3f4f6;font-family:Arial,Helvetica,sans-serif;'
        'color:#1f2937"><div style="max-width:560px;margin:0 auto;padding:32px;'
        'background:#ffffff"><h2 style="color:#0f766e;margin-top:0">'
        f"{html.escape(subject)}</h2>{paragraphs}{cta}"
        '<hr style="border:none;border-top:1px solid #e5e7eb">'
        '<p style="font-size:12px;color:#6b7280">Centro de Kinesiología Demo · '
        f"{html.escape(ADDRESS)}, Santiago · {CLINIC_PHONE}</p></div></body></html>"
    )


# --- in-memory plan ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Client:
    id: uuid.UUID
    name: str
    first_name: str
    country: str
    city: str
    phone: str | None
    phone_e164: str | None
    calling_code: str | None
    email: str | None
    created_at: datetime
    source: str
    patient_id: str
    weight: float
    tags: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Spec:
    """One outbound message to generate: what, on which channel, in which batch."""

    channel: Channel
    type: CommunicationType
    queue_key: tuple[object, ...]
    campaign: int | None = None
    # "queued": still waiting in the queue; "conversation": will be answered and open one.
    forced: str | None = None


@dataclass(slots=True)
class _Queue:
    key: tuple[object, ...]
    channel: Channel
    at: datetime
    specs: list[_Spec] = field(default_factory=list)
    used_clients: set[uuid.UUID] = field(default_factory=set)
    queue_id: str = ""


@dataclass(slots=True)
class _Message:
    row: dict[str, Any]
    client: _Client
    logs: list[dict[str, Any]] = field(default_factory=list)
    reply: Reply | None = None
    error: ProviderError | None = None
    # Its reply opens a conversation (planned, so the message count stays exact).
    conversation_source: bool = False


@dataclass(slots=True)
class _LedgerItem:
    at: datetime
    kind: LedgerEntryKind
    amount: int
    channel: str | None
    queue_id: str | None
    message_count: int
    log_id: uuid.UUID | None
    description: str


@dataclass(slots=True)
class DemoData:
    """Rows per table, in insertion order, plus the resulting credit balance."""

    tables: list[tuple[Table, list[dict[str, Any]]]]
    balance: int


class _DemoBuilder:
    def __init__(
        self,
        *,
        rng: random.Random,
        now: datetime,
        organization_id: uuid.UUID,
        member_id: uuid.UUID,
        organization_created_at: datetime,
    ) -> None:
        settings = get_settings()
        self.rng = rng
        self.now = now
        self.earliest = now - timedelta(days=HISTORY_DAYS)
        self.organization_id = organization_id
        self.member_id = member_id
        self.organization_created_at = organization_created_at
        self.prices = {
            Channel.SMS: settings.price_sms_segment,
            Channel.WHATSAPP: settings.price_whatsapp_message,
            Channel.EMAIL: settings.price_email_message,
        }
        self.instance = settings.evolution_instance
        self.email_from = f"{ORGANIZATION_NAME} <{settings.resend_from_email}>"
        self.local_today = now.astimezone(TZ).date()
        self.clients: list[_Client] = []
        self.tag_ids: dict[str, uuid.UUID] = {}
        self.campaign_ids: list[uuid.UUID] = []
        self.campaign_sendouts: list[list[datetime]] = []
        self.queues: dict[tuple[object, ...], _Queue] = {}
        self.messages: list[_Message] = []
        self.event_rows: list[dict[str, Any]] = []
        self.ledger: list[_LedgerItem] = []
        self.conversation_rows: list[dict[str, Any]] = []
        self.ledger_rows: list[dict[str, Any]] = []
        self._pools: dict[tuple[bool, str | None], tuple[list[_Client], list[float]]] = {}
        self._serials = {"session": rng.randint(1_000, 5_000), "venta": rng.randint(20_000, 40_000)}
        self._queue_serial = rng.randint(10_000, 20_000)
        self._single_serial = 0

    # -- entry point ------------------------------------------------------------------------

    def build(self, *, clients: int, messages: int) -> DemoData:
        self._make_clients(clients)
        self._make_campaigns()
        conversations = min(30, messages // 100)
        open_conversations = round(conversations * 0.2)
        # Each conversation adds the client's inbound reply and, once an agent picked it up,
        # the agent's answer; both count towards ``messages``.
        extra = conversations + (conversations - open_conversations)
        queued = min(8, max(2, messages // 400)) if messages >= 40 else 0
        regular = messages - extra - conversations - queued
        for _ in range(regular):
            self._add_spec(self._plan_spec(latest=self.now - timedelta(minutes=2)))
        for _ in range(conversations):
            self._add_spec(self._plan_conversation_source())
        if queued:
            key: tuple[object, ...] = ("queued", Channel.SMS)
            self._queue(key, Channel.SMS, self.now - _seconds(self.rng.uniform(90, 360)))
            for _ in range(queued):
                self._add_spec(_Spec(Channel.SMS, Type.PAYMENT_REMINDER, key, forced="queued"))
        self._render_queues()
        self._add_resends()
        self._add_conversations(open_conversations)
        for message in self.messages:
            self._mirror_latest_log(message)
        balance = self._finish_ledger()
        assert len(self.messages) == messages
        return DemoData(tables=self._tables(), balance=balance)

    # -- clients, tags, campaigns -----------------------------------------------------------

    def _make_clients(self, count: int) -> None:
        rng = self.rng
        used_emails: set[str] = set()
        countries = [code for code, _ in COUNTRIES]
        country_weights = [weight for _, weight in COUNTRIES]
        sources = [name for name, _ in CLIENT_SOURCES]
        source_weights = [weight for _, weight in CLIENT_SOURCES]
        imported_at = self.organization_created_at + timedelta(hours=2)
        for index in range(count):
            country = rng.choices(countries, country_weights)[0]
            cities = CITIES[country]
            city = rng.choices([name for name, _ in cities], [w for _, w in cities])[0]
            first = rng.choice(FIRST_NAMES)
            last = rng.choice(SURNAMES)
            name = f"{first} {last}"
            if country != "AR" and rng.random() < 0.45:
                name += f" {rng.choice(SURNAMES)}"
            # The first client has every contact point, so every channel has a recipient.
            has_phone = index == 0 or rng.random() > 0.07
            has_email = index == 0 or rng.random() > 0.12
            phone = phone_e164 = calling_code = None
            if has_phone:
                phone, parsed = self._phone(country, city)
                if index and rng.random() < 0.015:
                    # A typo the API could not normalize: kept as given, never messaged.
                    phone = phone[: len(phone) - 4]
                else:
                    phone_e164 = phonenumbers.format_number(
                        parsed, phonenumbers.PhoneNumberFormat.E164
                    )
                    calling_code = str(parsed.country_code)
            email = self._email(first, last, country, used_emails) if has_email else None
            if index and rng.random() < 0.2:
                source = rng.choices(sources, source_weights)[0]
                created_at = self.organization_created_at + _seconds(
                    rng.uniform(86_400, (self.now - self.organization_created_at).total_seconds())
                )
            else:
                source = "import"
                created_at = imported_at + _seconds(index * 0.01)
            self.clients.append(
                _Client(
                    id=uuid7(),
                    name=name,
                    first_name=first,
                    country=country,
                    city=city,
                    phone=phone,
                    phone_e164=phone_e164,
                    calling_code=calling_code,
                    email=email,
                    created_at=created_at,
                    source=source,
                    patient_id=f"PAC-{10_000 + index * 7 + rng.randint(0, 6)}",
                    weight=min(rng.paretovariate(1.4), 25.0),
                )
            )
        for client in self.clients:
            tags = [name for name, _, share in TAGS if share and rng.random() < share]
            if client.city == "Bogotá":
                tags.append("Bogotá")
            if client.city == "Santiago":
                tags.append("Santiago")
            if client.source != "import" and "Nuevos" not in tags and rng.random() < 0.6:
                tags.append("Nuevos")
            if len(tags) > MAX_TAGS_PER_CLIENT:
                tags = rng.sample(tags, MAX_TAGS_PER_CLIENT)
            client.tags = tags
        self.tag_ids = {name: uuid7() for name, _, _ in TAGS}

    def _phone(self, country: str, city: str) -> tuple[str, phonenumbers.PhoneNumber]:
        """A mobile number as a person types it, and its parse (always a valid number)."""
        rng = self.rng
        while True:
            if country == "CO":
                prefix = rng.choice(CO_MOBILE_PREFIXES)
                rest = f"{rng.randint(2_000_000, 9_999_999)}"
                typed = rng.choice(
                    (
                        f"{prefix} {rest[:3]} {rest[3:]}",
                        f"{prefix}{rest}",
                        f"+57 {prefix} {rest[:3]} {rest[3:]}",
                        f"(+57) {prefix}{rest}",
                    )
                )
            elif country in ("CL", "PE"):
                rest = f"{rng.randint(20_000_000, 99_999_999)}"
                code = "56" if country == "CL" else "51"
                if country == "CL":
                    options = (
                        f"9 {rest[:4]} {rest[4:]}",
                        f"+56 9 {rest[:4]} {rest[4:]}",
                        f"9{rest}",
                        f"+569{rest}",
                    )
                else:
                    full = f"9{rest}"
                    options = (
                        f"{full[:3]} {full[3:6]} {full[6:]}",
                        f"+{code} {full[:3]} {full[3:6]} {full[6:]}",
                        full,
                    )
                typed = rng.choice(options)
            elif country == "MX":
                area, length = AREA_CODES[city]
                rest = f"{rng.randint(2 * 10 ** (length - 1), 10**length - 1)}"
                half = len(rest) - 4
                typed = rng.choice(
                    (
                        f"{area} {rest[:half]} {rest[half:]}",
                        f"({area}) {rest[:half]}-{rest[half:]}",
                        f"+52 {area} {rest[:half]} {rest[half:]}",
                        f"{area}{rest}",
                    )
                )
            else:  # AR: mobiles are dialled with "15" locally and "+54 9" from abroad.
                area, length = AREA_CODES[city]
                rest = f"{rng.randint(2 * 10 ** (length - 1), 10**length - 1)}"
                half = len(rest) - 4
                typed = rng.choice(
                    (
                        f"{area} 15-{rest[:half]}-{rest[half:]}",
                        f"+54 9 {area} {rest[:half]}-{rest[half:]}",
                        f"0{area} 15 {rest[:half]}-{rest[half:]}",
                    )
                )
            parsed = phonenumbers.parse(typed, country)
            if phonenumbers.is_valid_number(parsed):
                return typed, parsed

    def _email(self, first: str, last: str, country: str, used: set[str]) -> str:
        rng = self.rng
        first_slug, last_slug = _ascii_slug(first), _ascii_slug(last)
        local = rng.choice(
            (
                f"{first_slug}.{last_slug}",
                f"{first_slug}{last_slug}{rng.randint(70, 99)}",
                f"{first_slug[0]}{last_slug}",
                f"{first_slug}_{last_slug}{rng.randint(1, 30)}",
                f"{first_slug}.{last_slug}{rng.randint(1980, 2005)}",
            )
        )
        domains = EMAIL_DOMAINS[country]
        domain = rng.choices([name for name, _ in domains], [w for _, w in domains])[0]
        email = f"{local}@{domain}"
        suffix = 2
        while email in used:
            email = f"{local}{suffix}@{domain}"
            suffix += 1
        used.add(email)
        return email

    def _make_campaigns(self) -> None:
        rng = self.rng
        for definition in CAMPAIGNS:
            days = rng.sample(range(2, HISTORY_DAYS - 2), definition.sendouts)
            sendouts = []
            for days_ago in sorted(days, reverse=True):
                day = self.local_today - timedelta(days=days_ago)
                if day.weekday() >= 5:  # campaigns go out on weekdays
                    day -= timedelta(days=day.weekday() - 4)
                at = time(rng.randint(10, 12), rng.choice((0, 15, 30, 45)))
                sendouts.append(_local_moment(day, at))
            self.campaign_sendouts.append(sorted(sendouts))
            self.campaign_ids.append(uuid7())

    # -- planning ---------------------------------------------------------------------------

    def _queue(self, key: tuple[object, ...], channel: Channel, at: datetime) -> _Queue:
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = _Queue(key=key, channel=channel, at=at)
        return queue

    def _add_spec(self, spec: _Spec) -> None:
        self.queues[spec.queue_key].specs.append(spec)

    def _plan_spec(self, *, latest: datetime) -> _Spec:
        rng = self.rng
        channel = rng.choices([c for c, _ in CHANNEL_WEIGHTS], [w for _, w in CHANNEL_WEIGHTS])[0]
        weights = TYPE_WEIGHTS[channel]
        kind = rng.choices([t for t, _ in weights], [w for _, w in weights])[0]
        return self._spec(channel, kind, latest=latest)

    def _plan_conversation_source(self) -> _Spec:
        """A WhatsApp message old enough for its reply and the agent's work to have happened."""
        kind = self.rng.choice((Type.CONFIRMATION, Type.SESSION_REMINDER, Type.PAYMENT_REMINDER))
        spec = self._spec(Channel.WHATSAPP, kind, latest=self.now - timedelta(days=4))
        spec.forced = "conversation"
        return spec

    def _spec(self, channel: Channel, kind: CommunicationType, *, latest: datetime) -> _Spec:
        rng = self.rng
        if kind == Type.SESSION_REMINDER:
            # The 09:00 batch reminds Tuesday-to-Saturday sessions and, on Saturday, Monday's.
            day = self._batch_day(time(9), latest, weekdays=range(6))
            offset = {Channel.SMS: 0, Channel.WHATSAPP: 5, Channel.EMAIL: 10}[channel]
            key: tuple[object, ...] = (kind, channel, day)
            at = _local_moment(day, time(9, offset)) + _seconds(rng.uniform(0, 40))
            self._queue(key, channel, at)
            return _Spec(channel, kind, key)
        if kind == Type.PAYMENT_REMINDER:
            day = self._batch_day(time(11), latest, weekdays=range(5))
            key = (kind, channel, day)
            at = _local_moment(day, time(11, 0)) + _seconds(rng.uniform(0, 90))
            self._queue(key, channel, at)
            return _Spec(channel, kind, key)
        if kind in (Type.CAMPAIGN, Type.REACTIVATION):
            choices = [
                index
                for index, definition in enumerate(CAMPAIGNS)
                if definition.type == kind
                and channel in definition.channels
                and self.campaign_sendouts[index][0] <= latest
            ]
            if choices:
                index = rng.choice(choices)
                sendouts = [at for at in self.campaign_sendouts[index] if at <= latest]
                number = rng.randrange(len(sendouts))
                key = ("campaign", index, number, channel)
                position = CAMPAIGNS[index].channels.index(channel)
                self._queue(key, channel, sendouts[number] + timedelta(minutes=3 * position))
                return _Spec(channel, kind, key, campaign=index)
            kind = Type.MANUAL
        # Transactional messages go out one by one as the front desk works.
        self._single_serial += 1
        key = ("single", channel, self._single_serial)
        self._queue(key, channel, self._business_moment(latest))
        return _Spec(channel, kind, key)

    def _batch_day(self, at: time, latest: datetime, *, weekdays: range) -> date:
        rng = self.rng
        while True:
            day = self.local_today - timedelta(days=rng.randrange(HISTORY_DAYS))
            moment = _local_moment(day, at)
            if day.weekday() in weekdays and self.earliest < moment <= latest:
                return day

    def _business_moment(self, latest: datetime) -> datetime:
        rng = self.rng
        while True:
            day = self.local_today - timedelta(days=rng.randrange(HISTORY_DAYS))
            if day.weekday() == 6 and rng.random() < 0.8:
                continue
            seconds = rng.uniform(8 * 3600, 20.5 * 3600)
            moment = _local_moment(day, time(0)) + _seconds(seconds)
            if self.earliest < moment <= latest:
                return moment

    # -- rendering --------------------------------------------------------------------------

    def _next_queue_id(self, channel: Channel) -> str:
        self._queue_serial += self.rng.randint(1, 9)
        return f"{channel.value}-queue-{self._queue_serial}"

    def _render_queues(self) -> None:
        ordered = sorted(enumerate(self.queues.values()), key=lambda pair: (pair[1].at, pair[0]))
        for _, queue in ordered:
            if not queue.specs:
                continue
            queue.queue_id = self._next_queue_id(queue.channel)
            latency = self.rng.uniform(0.4, 2.5)
            cost = 0
            for position, spec in enumerate(queue.specs):
                dispatch = latency + position / DISPATCH_RATE[queue.channel]
                message = self._render(spec, queue, queue.at + _seconds(dispatch))
                cost += message.row["cost"]
            self.ledger.append(
                _LedgerItem(
                    at=queue.at,
                    kind=LedgerEntryKind.DEBIT,
                    amount=-cost,
                    channel=queue.channel.value,
                    queue_id=queue.queue_id,
                    message_count=len(queue.specs),
                    log_id=None,
                    description=f"{len(queue.specs)} {queue.channel.value} message(s) enqueued",
                )
            )

    def _pick_client(self, channel: Channel, tag: str | None, queue: _Queue) -> _Client:
        """A client reachable on the channel; busy clients get more messages than others."""
        by_phone = channel != Channel.EMAIL
        pool = self._pools.get((by_phone, tag))
        if pool is None:
            members = [
                client
                for client in self.clients
                if (client.phone_e164 if by_phone else client.email)
                and (tag is None or tag in client.tags)
            ]
            if not members:
                return self._pick_client(channel, None, queue)
            pool = members, list(itertools.accumulate(client.weight for client in members))
            self._pools[(by_phone, tag)] = pool
        members, cumulative = pool
        for _ in range(12):  # a batch reaches each recipient once, when the pool allows it
            client = self.rng.choices(members, cum_weights=cumulative)[0]
            if client.id not in queue.used_clients:
                break
        queue.used_clients.add(client.id)
        if client.created_at > queue.at - timedelta(minutes=30):
            # Nobody is messaged before they exist: move the sign-up before this message.
            hours = self.rng.uniform(2, 96)
            client.created_at = max(
                self.organization_created_at + timedelta(hours=3),
                queue.at - timedelta(hours=hours),
            )
        return client

    def _render(self, spec: _Spec, queue: _Queue, dispatch_at: datetime) -> _Message:
        rng = self.rng
        channel = spec.channel
        campaign = CAMPAIGNS[spec.campaign] if spec.campaign is not None else None
        campaign_id = self.campaign_ids[spec.campaign] if spec.campaign is not None else None
        tag = campaign.target_tag if campaign is not None else None
        if spec.type == Type.SESSION_REMINDER and channel == Channel.SMS:
            tag = "Recordatorios"  # the clinic sends SMS reminders by tag
        client = self._pick_client(channel, tag, queue)
        values, metadata, link = self._values(spec, client, queue.at)
        if campaign is not None:
            body, subject, button = self._campaign_content(campaign, channel, values)
            template_id: str | None = f"tpl_campaign_{campaign.slug.replace('-', '_')}"
            metadata["campaignId"] = str(campaign_id)
        else:
            body, subject, button = self._content(spec.type, channel, values)
            template_id = None if spec.type == Type.MANUAL else f"tpl_{spec.type.value}"
        if button is not None:
            link = button[1]
        html_body = _email_html(subject, body, button) if subject is not None else None
        segments = sms_segments(body) if channel == Channel.SMS else 1
        message_id = uuid7()
        row: dict[str, Any] = {
            "id": message_id,
            "created_at": queue.at,
            "updated_at": queue.at,
            "organization_id": self.organization_id,
            "client_id": client.id,
            "campaign_id": campaign_id,
            "conversation_id": None,
            "author_member_id": self.member_id if spec.type == Type.MANUAL else None,
            "queue_id": queue.queue_id,
            "direction": Direction.OUTBOUND.value,
            "channel": channel.value,
            "communication_type": spec.type.value,
            "content_type": (ContentType.HTML if html_body else ContentType.PLAIN_TEXT).value,
            "body": body,
            "subject": subject,
            "html": html_body,
            "template_id": template_id,
            "recipient": "",
            "country_code": None,
            "metadata": metadata,
            "segments": segments,
            "cost": segments * self.prices[channel],
            "status": Status.QUEUED.value,
            "provider": None,
            "error_message": None,
            "scheduled_at": None,
            "sent_at": None,
            "deleted_at": None,
        }
        message = _Message(
            row=row, client=client, conversation_source=spec.forced == "conversation"
        )
        self.messages.append(message)
        if spec.forced == "queued":
            target = Status.QUEUED
        elif spec.forced == "conversation":
            target = Status.READ
        else:
            outcomes = OUTCOMES[channel]
            target = rng.choices([s for s, _ in outcomes], [w for _, w in outcomes])[0]
        reply: Reply | None = None
        if channel == Channel.WHATSAPP and target == Status.READ:
            if spec.forced == "conversation":
                candidates = [r for r in self._replies(spec.type) if r[1] is not None]
                reply = rng.choice(candidates)
            elif rng.random() < REPLY_CHANCE[spec.type]:
                reply = rng.choice(self._replies(spec.type))
        self._attempt(
            message,
            attempt=1,
            created_at=queue.at,
            dispatch_at=dispatch_at,
            target=target,
            reply=reply,
            link=link,
        )
        return message

    @staticmethod
    def _replies(kind: CommunicationType) -> tuple[Reply, ...]:
        if kind in (Type.SESSION_REMINDER, Type.CONFIRMATION):
            return SESSION_REPLIES
        if kind == Type.PAYMENT_REMINDER:
            return PAYMENT_REPLIES
        return GENERIC_REPLIES

    def _values(
        self, spec: _Spec, client: _Client, at: datetime
    ) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """Template values, business metadata and the message's link for one message."""
        rng = self.rng
        provider_id, provider_name = rng.choice(PRACTITIONERS)
        service = rng.choice(SERVICES)
        local = at.astimezone(TZ)
        values: dict[str, Any] = {
            "first": client.first_name,
            "provider": provider_name,
            "service": service[0].lower() + service[1:],
            "service_title": service,
            "site": SITE,
            "clinic_phone": CLINIC_PHONE,
            "address": ADDRESS,
            "signature": SIGNATURE,
            "day": local.day,
            "month": MONTHS[local.month - 1],
            "year": local.year,
            "weekday": WEEKDAYS[local.weekday()],
            "time": rng.choice(SLOTS).strftime("%H:%M"),
        }
        metadata: dict[str, Any] = {}
        link: str | None = None
        if spec.type in (Type.SESSION_REMINDER, Type.CONFIRMATION, Type.MANUAL):
            if spec.type == Type.SESSION_REMINDER:
                day = local.date() + timedelta(days=1)
                if day.weekday() == 6:
                    day += timedelta(days=1)
            else:
                day = local.date() + timedelta(days=rng.randint(1, 9))
                if day.weekday() == 6:
                    day += timedelta(days=1)
            slot = rng.choice(SLOTS)
            start = _local_moment(day, slot)
            self._serials["session"] += rng.randint(1, 4)
            session_id = f"sess_{self._serials['session']:06d}"
            values.update(
                day=day.day,
                month=MONTHS[day.month - 1],
                weekday=WEEKDAYS[day.weekday()],
                short_date=f"{day.day:02d}/{day.month:02d}",
                time=slot.strftime("%H:%M"),
                session_id=session_id,
            )
            provider = {"id": provider_id, "name": provider_name}
            if spec.type == Type.MANUAL:
                metadata = {"providerId": provider_id, "provider": provider}
            else:
                metadata = {
                    "sessionId": session_id,
                    "session": {"id": session_id, "startTime": _iso(start), "service": service},
                    "providerId": provider_id,
                    "provider": provider,
                }
                link = f"{SITE}/sesiones/{session_id}"
        elif spec.type in (Type.PAYMENT_REMINDER, Type.RECEIPT):
            self._serials["venta"] += rng.randint(1, 6)
            number = self._serials["venta"]
            venta_id = f"venta_{number:06d}"
            plan, price = rng.choice(PLANS)
            amount = rng.choice(PENDING_AMOUNTS) if spec.type == Type.PAYMENT_REMINDER else price
            link = f"{SITE}/pagar/{venta_id}"
            if spec.type == Type.RECEIPT:
                link = f"{SITE}/comprobantes/{venta_id}.pdf"
            values.update(
                venta_id=venta_id,
                venta_number=number,
                amount=_clp(amount),
                plan=plan,
                concept=f"plan de {plan}",
                payment_method=rng.choice(PAYMENT_METHODS),
                link=link,
            )
            metadata = {"ventaId": venta_id, "amount": amount, "currency": "CLP"}
        return values, metadata, link

    def _content(
        self, kind: CommunicationType, channel: Channel, values: dict[str, Any]
    ) -> tuple[str, str | None, tuple[str, str] | None]:
        rng = self.rng
        if channel == Channel.SMS:
            template, gsm = rng.choice(SMS_TEMPLATES[kind])
            body = template.format(**values)
            return (_gsm_transliterate(body) if gsm else body), None, None
        if channel == Channel.WHATSAPP:
            return rng.choice(WHATSAPP_TEMPLATES[kind]).format(**values), None, None
        subject, body, button = rng.choice(EMAIL_TEMPLATES[kind])
        rendered_button = None
        if button is not None:
            rendered_button = (button[0], button[1].format(**values))
        return body.format(**values), subject.format(**values), rendered_button

    @staticmethod
    def _campaign_content(
        campaign: CampaignDef, channel: Channel, values: dict[str, Any]
    ) -> tuple[str, str | None, tuple[str, str] | None]:
        if channel == Channel.SMS:
            return _gsm_transliterate(campaign.sms.format(**values)), None, None
        if channel == Channel.WHATSAPP:
            return campaign.whatsapp.format(**values), None, None
        assert campaign.email is not None
        subject, body, (label, url) = campaign.email
        return body.format(**values), subject.format(**values), (label, url.format(**values))

    # -- delivery attempts ------------------------------------------------------------------

    def _external_id(self, channel: Channel) -> str:
        # Provider ids must be unique across demos, so they do not come from the seeded rng.
        token = uuid.uuid4()
        if channel == Channel.SMS:
            return f"SM{token.hex}"
        if channel == Channel.WHATSAPP:
            return f"3EB0{token.hex[:16].upper()}"
        return str(token)

    def _provider_metadata(self, channel: Channel, message: _Message) -> dict[str, Any]:
        if channel == Channel.SMS:
            return {"numSegments": message.row["segments"]}
        if channel == Channel.WHATSAPP:
            digits = (message.client.phone_e164 or "").lstrip("+")
            return {"instanceName": self.instance, "remoteJid": f"{digits}@s.whatsapp.net"}
        return {"from": self.email_from}

    def _attempt(
        self,
        message: _Message,
        *,
        attempt: int,
        created_at: datetime,
        dispatch_at: datetime,
        target: MessageStatus,
        reply: Reply | None = None,
        link: str | None = None,
    ) -> dict[str, Any]:
        """One delivery attempt: its log row and timeline, cut off at ``now``."""
        rng = self.rng
        channel = Channel(message.row["channel"])
        client = message.client
        recipient = client.email if channel == Channel.EMAIL else client.phone_e164
        assert recipient is not None
        log_id = uuid7()
        events: list[tuple[TimelineEventType, datetime, dict[str, Any] | None]] = [
            (Event.CREATED, created_at, None)
        ]
        queued = created_at + _seconds(rng.uniform(0.05, 0.6))
        events.append((Event.QUEUED, queued, None))
        error: ProviderError | None = None
        if target in (Status.FAILED, Status.UNDELIVERED, Status.BOUNCED):
            error = rng.choice(ERRORS[(channel, target)])
            message.error = error
        if target == Status.FAILED:
            # Rejected before reaching the network: no sent event, credits refunded below.
            failed = max(queued, dispatch_at) + _seconds(rng.uniform(0.3, 2.5))
            assert error is not None
            events.append((Event.FAILED, failed, {"code": error.code, "message": error.message}))
        elif target != Status.QUEUED:
            sent = max(dispatch_at, queued + _seconds(0.1))
            events.append((Event.SENT, sent, None))
            if target == Status.UNDELIVERED:
                assert error is not None
                at = sent + _seconds(rng.uniform(4, 90))
                events.append(
                    (Event.UNDELIVERED, at, {"code": error.code, "message": error.message})
                )
            elif target == Status.BOUNCED:
                assert error is not None
                at = sent + _seconds(rng.uniform(1, 8))
                bounce = "hard" if error.code == "bounce_hard" else "soft"
                events.append((Event.BOUNCED, at, {"type": bounce, "reason": error.message}))
            elif target in (Status.DELIVERED, Status.READ):
                delivered = sent + self._delivery_delay(channel)
                events.append((Event.DELIVERED, delivered, None))
                if target == Status.READ:
                    read = delivered + _seconds(
                        min(rng.lognormvariate(math.log(900), 1.2), 129_600)
                    )
                    events.append((Event.READ, read, None))
                    if reply is not None:
                        answered = read + _seconds(
                            min(rng.lognormvariate(math.log(180), 1.0), 14_400)
                        )
                        events.append((Event.RESPONSE, answered, {"text": reply[0]}))
                if channel == Channel.EMAIL and rng.random() < 0.62:
                    opened = delivered + _seconds(
                        min(rng.lognormvariate(math.log(3600), 1.3), 259_200)
                    )
                    context = {
                        "userAgent": rng.choice(USER_AGENTS),
                        "ip": f"{rng.choice(IP_FIRST_OCTETS)}.{rng.randint(0, 255)}."
                        f"{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                    }
                    events.append((Event.OPENED, opened, context))
                    if link is not None and rng.random() < 0.3:
                        clicked = opened + _seconds(rng.uniform(3, 600))
                        events.append((Event.CLICKED, clicked, {"link": link, **context}))
        # Whatever has not happened yet by ``now`` is still to come.
        events = [event for event in events if event[1] <= self.now]
        status = Status.QUEUED
        moments: dict[TimelineEventType, datetime] = {}
        for event, at, _ in events:
            moments[event] = at
            status = EVENT_STATUS.get(event, status)
        # The provider names the attempt once it accepted it.
        external_id = self._external_id(channel) if Event.SENT in moments else None
        failed_at = moments.get(Event.FAILED) or moments.get(Event.UNDELIVERED)
        failed_at = failed_at or moments.get(Event.BOUNCED)
        response = next((meta for event, _, meta in events if event == Event.RESPONSE), None)
        refunded = status == Status.FAILED
        log: dict[str, Any] = {
            "id": log_id,
            "created_at": created_at,
            "updated_at": events[-1][1],
            "organization_id": self.organization_id,
            "message_id": message.row["id"],
            "client_id": client.id,
            "campaign_id": message.row["campaign_id"],
            "communication_type": message.row["communication_type"],
            "channel": channel.value,
            "direction": Direction.OUTBOUND.value,
            "attempt_number": attempt,
            "recipient": recipient,
            "body_override": None,
            "provider": PROVIDERS[channel],
            "external_id": external_id,
            "status": status.value,
            "not_before": None,
            "sent_at": moments.get(Event.SENT),
            "delivered_at": moments.get(Event.DELIVERED),
            "read_at": moments.get(Event.READ),
            "opened_at": moments.get(Event.OPENED),
            "clicked_at": moments.get(Event.CLICKED),
            "failed_at": failed_at,
            "error_code": error.code if failed_at else None,
            "error_message": error.message if failed_at and error else None,
            "response_text": response["text"] if response else None,
            "response_received_at": moments.get(Event.RESPONSE),
            "cost": message.row["cost"],
            "refunded": refunded,
            "provider_metadata": self._provider_metadata(channel, message),
        }
        if response is not None:
            message.reply = reply
        message.logs.append(log)
        self._add_events(log_id, external_id, events)
        if refunded:
            self.ledger.append(
                _LedgerItem(
                    at=events[-1][1],
                    kind=LedgerEntryKind.REFUND,
                    amount=message.row["cost"],
                    channel=channel.value,
                    queue_id=message.row["queue_id"],
                    message_count=1,
                    log_id=log_id,
                    description="refund: the attempt never reached the provider",
                )
            )
        return log

    def _delivery_delay(self, channel: Channel) -> timedelta:
        rng = self.rng
        if channel == Channel.SMS:
            return _seconds(rng.uniform(2, 25))
        if channel == Channel.EMAIL:
            return _seconds(rng.uniform(0.8, 9))
        if rng.random() < 0.1:  # the phone was off: delivered when it came back
            return _seconds(rng.uniform(600, 28_800))
        return _seconds(rng.uniform(0.4, 4))

    def _add_events(
        self,
        log_id: uuid.UUID,
        external_id: str | None,
        events: Sequence[tuple[TimelineEventType, datetime, dict[str, Any] | None]],
    ) -> None:
        for event, at, metadata in events:
            from_provider = external_id is not None and event not in (Event.CREATED, Event.QUEUED)
            self.event_rows.append(
                {
                    "id": uuid7(),
                    "created_at": at,
                    "organization_id": self.organization_id,
                    "log_id": log_id,
                    "event": event.value,
                    "occurred_at": at,
                    # Provider callbacks carry their own id; replays of it are dropped.
                    "dedup_key": f"{external_id}:{event.value}" if from_provider else None,
                    "metadata": metadata,
                }
            )

    def _add_resends(self) -> None:
        """Resend a share of transient failures, as an operator would from the log view."""
        rng = self.rng
        candidates = [
            message
            for message in self.messages
            if message.error is not None
            and message.error.transient
            and message.logs[-1]["failed_at"] is not None
            and message.logs[-1]["failed_at"] < self.now - timedelta(hours=2)
        ]
        chosen = [message for message in candidates if rng.random() < 0.4]
        if candidates and not chosen:
            chosen = [candidates[0]]
        for message in chosen:
            first = message.logs[-1]
            at = first["failed_at"] + _seconds(rng.uniform(600, 21_600))
            at = min(at, self.now - timedelta(minutes=30))
            channel = Channel(message.row["channel"])
            outcomes = RESEND_OUTCOMES[channel]
            target = rng.choices([s for s, _ in outcomes], [w for _, w in outcomes])[0]
            message.error = None
            log = self._attempt(
                message,
                attempt=2,
                created_at=at,
                dispatch_at=at + _seconds(rng.uniform(0.5, 3)),
                target=target,
            )
            self.ledger.append(
                _LedgerItem(
                    at=at,
                    kind=LedgerEntryKind.DEBIT,
                    amount=-message.row["cost"],
                    channel=channel.value,
                    queue_id=message.row["queue_id"],
                    message_count=1,
                    log_id=log["id"],
                    description="resend",
                )
            )

    # -- conversations ----------------------------------------------------------------------

    def _add_conversations(self, open_count: int) -> None:
        """Replies that needed a human open a conversation; older ones are already resolved."""
        rng = self.rng
        sources = sorted(
            (message for message in self.messages if message.conversation_source),
            key=lambda message: message.logs[0]["response_received_at"],
        )
        pending_count = round(len(sources) * 0.2)
        for index, source in enumerate(sources):
            newest_first = len(sources) - 1 - index
            if newest_first < open_count:
                status = ConversationStatus.OPEN
            elif newest_first < open_count + pending_count:
                status = ConversationStatus.PENDING
            else:
                status = ConversationStatus.RESOLVED
            assert source.reply is not None
            text, category = source.reply
            assert category is not None
            opened_at: datetime = source.logs[0]["response_received_at"]
            conversation_id = uuid7()
            client = source.client
            self._add_inbound(source, conversation_id, opened_at, text)
            row: dict[str, Any] = {
                "id": conversation_id,
                "created_at": opened_at,
                "updated_at": opened_at,
                "organization_id": self.organization_id,
                "client_id": client.id,
                "channel": Channel.WHATSAPP.value,
                "status": status.value,
                "category": category,
                "assigned_member_id": None,
                "resolution_outcome": None,
                "opened_at": opened_at,
                "last_message_at": opened_at,
                "first_response_at": None,
                "first_response_seconds": None,
                "resolved_at": None,
                "resolution_seconds": None,
            }
            if status != ConversationStatus.OPEN:
                answered = opened_at + _seconds(min(rng.lognormvariate(math.log(900), 1.0), 10_800))
                self._add_agent_reply(source, conversation_id, answered, category)
                row.update(
                    assigned_member_id=self.member_id,
                    last_message_at=answered,
                    updated_at=answered,
                    first_response_at=answered,
                    first_response_seconds=int((answered - opened_at).total_seconds()),
                )
                if status == ConversationStatus.RESOLVED:
                    resolved = answered + _seconds(rng.uniform(300, 36_000))
                    resolved = min(resolved, self.now - timedelta(minutes=5))
                    row.update(
                        resolved_at=resolved,
                        updated_at=resolved,
                        resolution_seconds=int((resolved - opened_at).total_seconds()),
                        resolution_outcome=rng.choice(OUTCOMES_BY_CATEGORY[category]),
                    )
            self.conversation_rows.append(row)

    def _add_inbound(
        self, source: _Message, conversation_id: uuid.UUID, at: datetime, text: str
    ) -> None:
        client = source.client
        assert client.phone_e164 is not None
        message_id, log_id = uuid7(), uuid7()
        external_id = f"3A{uuid.uuid4().hex[:18].upper()}"
        row: dict[str, Any] = {
            **source.row,
            "id": message_id,
            "created_at": at,
            "updated_at": at,
            "campaign_id": None,
            "conversation_id": conversation_id,
            "author_member_id": None,
            "queue_id": None,
            "direction": Direction.INBOUND.value,
            "communication_type": Type.MANUAL.value,
            "content_type": ContentType.PLAIN_TEXT.value,
            "body": text,
            "subject": None,
            "html": None,
            "template_id": None,
            "metadata": {"inReplyTo": str(source.row["id"])},
            "segments": 1,
            "cost": 0,
        }
        message = _Message(row=row, client=client)
        events: list[tuple[TimelineEventType, datetime, dict[str, Any] | None]] = [
            (Event.CREATED, at, None),
            (Event.RECEIVED, at, {"pushName": client.first_name}),
        ]
        message.logs.append(
            {
                **source.logs[0],
                "id": log_id,
                "created_at": at,
                "updated_at": at,
                "message_id": message_id,
                "campaign_id": None,
                "communication_type": Type.MANUAL.value,
                "direction": Direction.INBOUND.value,
                "attempt_number": 1,
                "external_id": external_id,
                "status": Status.RECEIVED.value,
                "sent_at": at,
                "delivered_at": None,
                "read_at": None,
                "opened_at": None,
                "clicked_at": None,
                "failed_at": None,
                "error_code": None,
                "error_message": None,
                "response_text": None,
                "response_received_at": None,
                "cost": 0,
                "refunded": False,
                "provider_metadata": {
                    "instanceName": self.instance,
                    "remoteJid": f"{client.phone_e164.lstrip('+')}@s.whatsapp.net",
                    "pushName": client.first_name,
                },
            }
        )
        self._add_events(log_id, external_id, events)
        self.messages.append(message)

    def _add_agent_reply(
        self, source: _Message, conversation_id: uuid.UUID, at: datetime, category: str
    ) -> None:
        rng = self.rng
        queue = _Queue(
            key=("agent", conversation_id), channel=Channel.WHATSAPP, at=at, used_clients=set()
        )
        queue.queue_id = self._next_queue_id(Channel.WHATSAPP)
        _, provider_name = rng.choice(PRACTITIONERS)
        day = at.astimezone(TZ).date() + timedelta(days=rng.randint(1, 4))
        body = rng.choice(AGENT_REPLIES[category]).format(
            first=source.client.first_name,
            weekday=WEEKDAYS[day.weekday()],
            time=rng.choice(SLOTS).strftime("%H:%M"),
            provider=provider_name,
        )
        row: dict[str, Any] = {
            **source.row,
            "id": uuid7(),
            "created_at": at,
            "updated_at": at,
            "campaign_id": None,
            "conversation_id": conversation_id,
            "author_member_id": self.member_id,
            "queue_id": queue.queue_id,
            "communication_type": Type.MANUAL.value,
            "body": body,
            "template_id": None,
            "metadata": {},
            "segments": 1,
            "cost": self.prices[Channel.WHATSAPP],
        }
        message = _Message(row=row, client=source.client)
        self.messages.append(message)
        target = Status.READ if rng.random() < 0.7 else Status.DELIVERED
        self._attempt(
            message,
            attempt=1,
            created_at=at,
            dispatch_at=at + _seconds(rng.uniform(0.4, 2)),
            target=target,
        )
        self.ledger.append(
            _LedgerItem(
                at=at,
                kind=LedgerEntryKind.DEBIT,
                amount=-row["cost"],
                channel=Channel.WHATSAPP.value,
                queue_id=queue.queue_id,
                message_count=1,
                log_id=None,
                description="1 whatsapp message(s) enqueued",
            )
        )

    # -- finishing --------------------------------------------------------------------------

    @staticmethod
    def _mirror_latest_log(message: _Message) -> None:
        """A message shows its latest attempt: status, channel, recipient, provider, times."""
        latest = message.logs[-1]
        row = message.row
        row.update(
            status=latest["status"],
            channel=latest["channel"],
            recipient=latest["recipient"],
            provider=latest["provider"],
            sent_at=latest["sent_at"],
            error_message=latest["error_message"],
            updated_at=max(log["updated_at"] for log in message.logs),
            country_code=(
                message.client.calling_code if latest["channel"] != Channel.EMAIL.value else None
            ),
        )

    def _finish_ledger(self) -> int:
        """Running balances in time order, topping up before the balance runs low."""
        balance = INITIAL_CREDITS
        items = sorted(enumerate(self.ledger), key=lambda pair: (pair[1].at, pair[0]))
        for _, item in items:
            if item.amount < 0 and balance + item.amount < LOW_BALANCE:
                balance += INITIAL_CREDITS
                self.ledger_rows.append(
                    self._ledger_row(
                        _LedgerItem(
                            at=item.at - timedelta(minutes=1),
                            kind=LedgerEntryKind.TOPUP,
                            amount=INITIAL_CREDITS,
                            channel=None,
                            queue_id=None,
                            message_count=0,
                            log_id=None,
                            description="credit top-up",
                        ),
                        balance,
                    )
                )
            balance += item.amount
            self.ledger_rows.append(self._ledger_row(item, balance))
        return balance

    def _ledger_row(self, item: _LedgerItem, balance_after: int) -> dict[str, Any]:
        return {
            "id": uuid7(),
            "created_at": item.at,
            "organization_id": self.organization_id,
            "kind": item.kind.value,
            "amount": item.amount,
            "balance_after": balance_after,
            "channel": item.channel,
            "queue_id": item.queue_id,
            "message_count": item.message_count,
            "log_id": item.log_id,
            "description": item.description,
        }

    def _tables(self) -> list[tuple[Table, list[dict[str, Any]]]]:
        client_rows = []
        client_tag_rows = []
        for client in self.clients:
            metadata: dict[str, Any] = {
                "source": client.source,
                "patientId": client.patient_id,
                "city": client.city,
            }
            client_rows.append(
                {
                    "id": client.id,
                    "created_at": client.created_at,
                    "updated_at": client.created_at,
                    "organization_id": self.organization_id,
                    "name": client.name,
                    "email": client.email,
                    "phone": client.phone,
                    "phone_e164": client.phone_e164,
                    "country": client.country,
                    "metadata": metadata,
                    "deleted_at": None,
                }
            )
            for tag in client.tags:
                client_tag_rows.append(
                    {
                        "id": uuid7(),
                        "created_at": client.created_at,
                        "organization_id": self.organization_id,
                        "client_id": client.id,
                        "tag_id": self.tag_ids[tag],
                    }
                )
        tags_created = self.organization_created_at + timedelta(minutes=20)
        tag_rows = [
            {
                "id": self.tag_ids[name],
                "created_at": tags_created,
                "updated_at": tags_created,
                "organization_id": self.organization_id,
                "name": name,
                "color": color,
            }
            for name, color, _ in TAGS
        ]
        campaign_rows = []
        for index, definition in enumerate(CAMPAIGNS):
            created = self.campaign_sendouts[index][0] - timedelta(days=1, hours=index + 2)
            campaign_rows.append(
                {
                    "id": self.campaign_ids[index],
                    "created_at": created,
                    "updated_at": created,
                    "organization_id": self.organization_id,
                    "name": definition.name,
                    "description": definition.description,
                }
            )
        messages = sorted(self.messages, key=lambda message: message.row["created_at"])
        # Parents before children: the foreign keys are checked row by row.
        return [
            (_table(Client), client_rows),
            (_table(Tag), tag_rows),
            (_table(ClientTag), client_tag_rows),
            (_table(Campaign), campaign_rows),
            (_table(Conversation), self.conversation_rows),
            (_table(Message), [message.row for message in messages]),
            (_table(CommunicationLog), [log for message in messages for log in message.logs]),
            (_table(LogEvent), self.event_rows),
            (_table(CreditLedgerEntry), self.ledger_rows),
        ]


async def create_demo_organization(
    session: AsyncSession,
    *,
    clients: int = 300,
    messages: int = 3000,
    seed: int | None = None,
    now: datetime | None = None,
) -> dict[str, object]:
    """Create a demo organization with a month of realistic traffic; the caller commits.

    Returns the ids and the plaintext API key (shown once) along with what was created.
    ``now`` anchors every timestamp (defaults to the current time); with the same ``seed``
    and ``now`` the generated content is identical.
    """
    if clients < 1:
        raise ValueError("a demo needs at least one client")
    if messages < 0:
        raise ValueError("messages must not be negative")
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = (now or utcnow()).astimezone(UTC)
    result = await bootstrap(
        session,
        organization_name=ORGANIZATION_NAME,
        member_email=MEMBER_EMAIL,
        credits=INITIAL_CREDITS,
        timezone=ORGANIZATION_TIMEZONE,
        key_name="demo",
    )
    organization, member = result.organization, result.member
    # The organization signed up before the month of traffic it shows.
    started = now - timedelta(days=ORGANIZATION_AGE_DAYS)
    for entity in (organization, member, result.api_key):
        entity.created_at = started
        entity.updated_at = started
    member.name = "Equipo Demo"
    member.terms_accepted_at = started
    await session.execute(
        update(CreditLedgerEntry)
        .where(CreditLedgerEntry.organization_id == organization.id)
        .values(created_at=started)
    )
    await session.execute(
        update(ChannelConfig)
        .where(ChannelConfig.organization_id == organization.id)
        .values(created_at=started, updated_at=started)
    )
    builder = _DemoBuilder(
        rng=random.Random(seed),
        now=now,
        organization_id=organization.id,
        member_id=member.id,
        organization_created_at=started,
    )
    data = builder.build(clients=clients, messages=messages)
    for table, rows in data.tables:
        if rows:
            await bulk_insert(session, table, rows)
    organization.credit_balance = data.balance
    organization.updated_at = now
    await session.flush()
    return {
        "organizationId": str(organization.id),
        "memberId": str(member.id),
        "apiKey": result.plaintext_key,
        "clients": clients,
        "messages": messages,
    }
