"""The printable invoice (HTML for weasyprint): header, lines, totals, payment terms, and the metering annex."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from html import escape

from billing.model import Invoice, Party

# One font family, declared by @font-face from the reduced copy billing.documents prepares (see there why).
STYLE = """
@font-face { font-family: Vigie; src: url(Vigie-Regular.ttf); }
@font-face { font-family: Vigie; font-weight: bold; src: url(Vigie-Bold.ttf); }
@page { size: A4; margin: 16mm 14mm 18mm 14mm;
        @bottom-right { content: counter(page) " / " counter(pages); font: 7pt Vigie; color: #555; } }
body { font-family: Vigie; font-size: 8.5pt; color: #111; }
h1 { font-size: 14pt; margin: 0 0 2mm 0; } h2 { font-size: 10pt; margin: 5mm 0 2mm 0; }
.parties { display: flex; justify-content: space-between; margin: 4mm 0; }
.party { width: 48%; border: 0.5pt solid #999; padding: 2mm; }
table { width: 100%; border-collapse: collapse; margin-top: 2mm; }
th { text-align: left; border-bottom: 0.8pt solid #111; padding: 1mm; font-size: 7.5pt; }
td { border-bottom: 0.3pt solid #bbb; padding: 1mm; vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
.totals { width: 45%; margin-left: 55%; } .totals td { border: none; }
.grand td { font-weight: bold; border-top: 0.8pt solid #111; }
.note { color: #444; font-size: 7.5pt; margin-top: 3mm; }
.annex { page-break-before: always; }
"""

KIND_TITLES = {"invoice": "Facture", "credit_note": "Avoir"}
UNITS = {"DAY": "j", "HUR": "h", "C62": "u"}


def euros(value: Decimal) -> str:
    """French notation: narrow no-break space between thousands, comma before the cents."""
    text = f"{value:,.2f}".replace(",", "\u202f").replace(".", ",")
    return f"{text}\u00a0€"


def decimal_fr(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")
    return text.replace(".", ",")


def day(value: date | None) -> str:
    return "" if value is None else value.strftime("%d/%m/%Y")


def _party(title: str, party: Party) -> str:
    rows = [f"<strong>{escape(party.name)}</strong>", escape(party.address_line),
            f"{escape(party.postcode)} {escape(party.city)}", f"SIRET {escape(party.siret)}"]
    if party.vat_number:
        rows.append(f"TVA {escape(party.vat_number)}")
    if party.chorus_service_code:
        rows.append(f"Code service Chorus Pro : {escape(party.chorus_service_code)}")
    if party.engagement_number:
        rows.append(f"N° d'engagement : {escape(party.engagement_number)}")
    if party.contract_reference:
        rows.append(f"Convention : {escape(party.contract_reference)}")
    if party.contact_name:
        rows.append(f"Contact : {escape(party.contact_name)} {escape(party.contact_email or '')}")
    return f'<div class="party"><div class="note">{title}</div>{"<br>".join(rows)}</div>'


def _price(unit_price: Decimal, base_quantity: Decimal, unit: str) -> str:
    per = "" if base_quantity == 1 else f" / {decimal_fr(base_quantity)} {unit}"
    return f"{euros(unit_price)}{per}"


def _lines(invoice: Invoice) -> str:
    rows = "".join(
        f"<tr><td>{line.position}</td><td>{escape(line.description)}</td>"
        f'<td class="num">{decimal_fr(line.quantity)} {UNITS.get(line.unit_code, line.unit_code)}</td>'
        f'<td class="num">{_price(line.unit_price, line.base_quantity, UNITS.get(line.unit_code, ""))}</td>'
        f'<td class="num">{decimal_fr(line.vat_rate)} %</td><td class="num">{euros(line.net_amount)}</td></tr>'
        for line in invoice.lines
    )
    return (
        '<table><tr><th>#</th><th>Désignation</th><th class="num">Quantité</th><th class="num">Prix HT</th>'
        f'<th class="num">TVA</th><th class="num">Montant HT</th></tr>{rows}</table>'
    )


def _annex(invoice: Invoice) -> str:
    annex = invoice.annex
    rows = "".join(
        f"<tr><td>{escape(c.name)}</td><td>{escape(c.insee_code)}</td>"
        f"<td>{escape(', '.join(f'{code} : {n} j' for code, n in sorted(c.days_by_plan.items())) or '—')}</td>"
        f'<td class="num">{c.unplanned_days or ""}</td>'
        f'<td class="num">{"—" if c.availability is None else decimal_fr(c.availability) + " %"}</td>'
        f'<td class="num">{euros(c.credit) if c.credit else ""}</td></tr>'
        for c in annex.cameras
    )
    priced = {line.kind for line in invoice.lines}
    detector = "facturé" if "detector_usage" in priced else "à titre informatif"
    storage = "facturé" if "storage_usage" in priced else "à titre informatif"
    return (
        f'<div class="annex"><h2>Annexe — relevé du mois ({annex.days_in_month} jours)</h2>'
        '<table><tr><th>Caméra</th><th>INSEE</th><th>Jours par offre</th><th class="num">Jours sans offre</th>'
        f'<th class="num">Disponibilité</th><th class="num">Avoir</th></tr>{rows}</table>'
        f'<p>Temps de détection : {decimal_fr(annex.detector_hours)} h ({detector}). '
        f"Stockage des enregistrements : {decimal_fr(annex.storage_gb_days)} Go·jour ({storage}).</p>"
        '<p class="note">Un jour compte lorsque la caméra était enregistrée et non suspendue pendant une partie de '
        "ce jour (heure de Paris) et couverte par une offre de la convention. La disponibilité est mesurée sur ces "
        "jours, à partir des interruptions d'enregistrement.</p></div>"
    )


def invoice_html(invoice: Invoice) -> str:
    title = KIND_TITLES.get(invoice.kind, "Facture")
    credit = (
        f"<p>Avoir sur la facture {escape(invoice.credit_of_number or '')} du {day(invoice.credit_of_issue_date)}"
        f"{' : ' + escape(invoice.credit_reason) if invoice.credit_reason else ''}.</p>"
        if invoice.credit_of_number
        else ""
    )
    payment = (
        f"Paiement par virement à l'IBAN {escape(invoice.seller.iban)}"
        if invoice.seller.iban
        else "Paiement par virement"
    )
    return (
        f"<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{title} {escape(invoice.number)}"
        f"</title><style>{STYLE}</style></head><body>"
        f"<h1>{title} n° {escape(invoice.number)}</h1>"
        f"<div>Émise le {day(invoice.issue_date)} — période du {day(invoice.period_start)} au "
        f"{day(invoice.period_end)}{' — échéance le ' + day(invoice.due_date) if invoice.due_date else ''}</div>"
        f'<div class="parties">{_party("Émetteur", invoice.seller)}{_party("Destinataire", invoice.buyer)}</div>'
        f"{credit}{_lines(invoice)}"
        '<table class="totals">'
        f'<tr><td>Total HT</td><td class="num">{euros(invoice.total_ht)}</td></tr>'
        f'<tr><td>TVA {decimal_fr(invoice.vat_rate)} %</td><td class="num">{euros(invoice.total_vat)}</td></tr>'
        f'<tr class="grand"><td>Total TTC</td><td class="num">{euros(invoice.total_ttc)}</td></tr></table>'
        f'<p class="note">{payment}, référence {escape(invoice.number)}. Montants en euros, arrondis au centime par '
        "ligne. Facture électronique Factur-X (EN 16931) : les données structurées jointes font foi.</p>"
        f"{_annex(invoice)}</body></html>"
    )
