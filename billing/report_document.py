"""The printable monthly report (HTML for weasyprint): what was paid and got, charts, figures per camera."""

from __future__ import annotations

from html import escape

from billing.charts import availability_bars, daily_alerts
from billing.invoice_html import STYLE, decimal_fr, euros
from billing.model import Figures, MonthlyReport

OUTCOMES = {
    "arrest_in_flagrante_delicto": "interpellation en flagrant délit",
    "people_found": "personnes trouvées sur place",
    "nobody_found": "personne sur place",
    "false_alarm": "fausse alerte",
}
STATUSES = {"issued": "émise", "sent": "transmise", "paid": "payée", "cancelled": "annulée"}
# The detail table is wide: its pages are landscape.
REPORT_STYLE = """
@page wide { size: A4 landscape; }
.wide { page: wide; page-break-before: always; }
td.camera { padding-left: 4mm; color: #333; }
tr.commune td { font-weight: bold; }
"""
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h".replace(".", ",")


def _percent(figures: Figures) -> str:
    return "—" if figures.availability is None else f"{decimal_fr(figures.availability)} %"


def _month_name(month: str) -> str:
    return f"{MONTHS[int(month[5:7]) - 1]} {month[:4]}"


def _what_you_got(report: MonthlyReport) -> str:
    t = report.totals
    paid = (
        f"<p>Facture {escape(report.invoice.number)} : <strong>{euros(report.invoice.total_ttc)} TTC</strong> "
        f"({euros(report.invoice.total_ht)} HT), {STATUSES.get(report.invoice.status, report.invoice.status)}.</p>"
        if report.invoice
        else "<p>Aucune facture émise pour ce mois à ce jour.</p>"
    )
    outcomes = "".join(f"<li>{OUTCOMES.get(k, k)} : {n}</li>" for k, n in t.outcomes.items()) or "<li>aucun</li>"
    cameras = sum(len(c.cameras) for c in report.communes)
    return (
        "<h2>Ce que vous avez payé</h2>" + paid
        + "<h2>Ce que vous avez obtenu</h2><ul>"
        f"<li>{cameras} caméras, disponibles {_percent(t)} du temps, {decimal_fr(t.recorded_hours)} h "
        "d'enregistrement conservées et consultables sur réquisition</li>"
        f"<li>{t.alerts_raised} signalements levés, {t.alerts_verified} vérifiés par un opérateur "
        f"(médiane {duration(t.verification_median_s)}, 9 sur 10 en moins de {duration(t.verification_p90_s)}), "
        f"{t.alerts_dismissed} écartés</li>"
        f"<li>{t.alerts_dispatched} transmis aux forces (médiane {duration(t.dispatch_median_s)} après la levée)</li>"
        f"<li>{t.arrivals} arrivées sur place signalées (médiane {duration(t.arrival_median_s)}, "
        f"9 sur 10 en moins de {duration(t.arrival_p90_s)})</li>"
        f"<li>Constats des intervenants :<ul>{outcomes}</ul></li>"
        f"<li>{t.requisitions_received} réquisitions judiciaires reçues, {t.requisitions_served} servies</li></ul>"
    )


def _row(label: str, f: Figures, *, commune: bool) -> str:
    return (
        f'<tr class="{"commune" if commune else ""}"><td class="{"" if commune else "camera"}">{escape(label)}</td>'
        f'<td class="num">{_percent(f)}</td>'
        f'<td class="num">{decimal_fr(f.recorded_hours)}</td><td class="num">{f.alerts_raised}</td>'
        f'<td class="num">{f.alerts_verified}</td><td class="num">{f.alerts_dismissed}</td>'
        f'<td class="num">{f.alerts_dispatched}</td>'
        f'<td class="num">{duration(f.verification_median_s)} / {duration(f.verification_p90_s)}</td>'
        f'<td class="num">{duration(f.dispatch_median_s)} / {duration(f.dispatch_p90_s)}</td>'
        f'<td class="num">{duration(f.arrival_median_s)} / {duration(f.arrival_p90_s)}</td>'
        f'<td class="num">{f.outcomes.get("arrest_in_flagrante_delicto", 0)}</td>'
        f'<td class="num">{f.requisitions_served}/{f.requisitions_received}</td></tr>'
    )


def report_html(report: MonthlyReport) -> str:
    header = (
        "<tr><th>Commune / caméra</th><th class=\"num\">Dispo.</th><th class=\"num\">Heures</th>"
        "<th class=\"num\">Levées</th><th class=\"num\">Vérif.</th><th class=\"num\">Écartées</th>"
        "<th class=\"num\">Transmises</th><th class=\"num\">Vérif. méd./p90</th><th class=\"num\">Transm. méd./p90"
        "</th><th class=\"num\">Arrivée méd./p90</th><th class=\"num\">Flagrants délits</th>"
        "<th class=\"num\">Réquis.</th></tr>"
    )
    rows = "".join(
        _row(f"{c.name} ({c.insee_code})", c.figures, commune=True)
        + "".join(_row(camera.name, camera.figures, commune=False) for camera in c.cameras)
        for c in report.communes
    )
    cameras = [(camera.name, camera.figures.availability) for c in report.communes for camera in c.cameras]
    return (
        f"<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Rapport {report.month}</title>"
        f"<style>{STYLE}{REPORT_STYLE} td, th {{ font-size: 7pt; }}</style></head><body>"
        f"<h1>Vidéoprotection — {escape(report.tenant_name)} — {_month_name(report.month)}</h1>"
        f"{_what_you_got(report)}"
        f"<h2>Signalements par jour</h2>{daily_alerts(report.daily)}"
        f"<h2>Disponibilité des caméras</h2>{availability_bars(cameras)}"
        f'<div class="wide"><h2>Détail par commune et par caméra</h2><table>{header}{rows}</table>'
        '<p class="note">Durées : médiane / 90e centile. Vérification et transmission comptées depuis la levée du '
        "signalement ; arrivée depuis l'ordre transmis à la force.</p></div></body></html>"
    )
