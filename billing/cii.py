"""The EN 16931 Cross Industry Invoice (CII D16B, Factur-X profile EN 16931) of an issued document."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

from billing.model import Invoice, Party

# Chorus Pro reads: the buyer's SIRET (BT-47, scheme 0009), the service code (BT-10 buyer reference), the engagement
# number (BT-13 purchase order reference) and the billing framework (BT-23: A1, a supplier's invoice).
RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
for _prefix, _uri in (("rsm", RSM), ("ram", RAM), ("udt", UDT), ("qdt", QDT)):
    ET.register_namespace(_prefix, _uri)

EN16931 = "urn:cen.eu:en16931:2017"
TYPE_INVOICE, TYPE_CREDIT_NOTE = "380", "381"
SIRET_SCHEME, SIREN_SCHEME = "0009", "0002"
# UNTDID 4461: 30 credit transfer; 58 SEPA credit transfer (an IBAN is given).
PAYMENT_MEANS_TRANSFER, PAYMENT_MEANS_SEPA = "30", "58"


def _el(parent: ET.Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    child = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        child.text = text
    return child


def _ram(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    return _el(parent, RAM, tag, text, **attrs)


def _date(parent: ET.Element, tag: str, value: date, ns: str = UDT) -> None:
    _el(_ram(parent, tag), ns, "DateTimeString", value.strftime("%Y%m%d"), format="102")


def _amount(value: Decimal) -> str:
    return f"{value:.2f}"


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else format(value, "f")


def _party(parent: ET.Element, tag: str, party: Party, *, seller: bool) -> None:
    node = _ram(parent, tag)
    if not seller:
        _ram(node, "GlobalID", party.siret, schemeID=SIRET_SCHEME)
    _ram(node, "Name", party.name)
    legal = _ram(node, "SpecifiedLegalOrganization")
    if seller:
        _ram(legal, "ID", party.siret[:9], schemeID=SIREN_SCHEME)
    else:
        _ram(legal, "ID", party.siret, schemeID=SIRET_SCHEME)
    if party.contact_name or party.contact_email:
        contact = _ram(node, "DefinedTradeContact")
        if party.contact_name:
            _ram(contact, "PersonName", party.contact_name)
        if party.contact_email:
            _ram(_ram(contact, "EmailURIUniversalCommunication"), "URIID", party.contact_email)
    address = _ram(node, "PostalTradeAddress")
    _ram(address, "PostcodeCode", party.postcode)
    _ram(address, "LineOne", party.address_line)
    _ram(address, "CityName", party.city)
    _ram(address, "CountryID", party.country)
    if seller and party.vat_number:
        _ram(_ram(node, "SpecifiedTaxRegistration"), "ID", party.vat_number, schemeID="VA")


def build_cii(invoice: Invoice) -> bytes:
    """The CII XML of one invoice or credit note, as UTF-8 bytes with an XML declaration."""
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _el(root, RSM, "ExchangedDocumentContext")
    _ram(_ram(context, "BusinessProcessSpecifiedDocumentContextParameter"), "ID", "A1")
    _ram(_ram(context, "GuidelineSpecifiedDocumentContextParameter"), "ID", EN16931)

    document = _el(root, RSM, "ExchangedDocument")
    _ram(document, "ID", invoice.number)
    _ram(document, "TypeCode", TYPE_CREDIT_NOTE if invoice.kind == "credit_note" else TYPE_INVOICE)
    _date(document, "IssueDateTime", invoice.issue_date)
    if invoice.credit_reason:
        _ram(_ram(document, "IncludedNote"), "Content", invoice.credit_reason)

    transaction = _el(root, RSM, "SupplyChainTradeTransaction")
    for line in invoice.lines:
        item = _ram(transaction, "IncludedSupplyChainTradeLineItem")
        _ram(_ram(item, "AssociatedDocumentLineDocument"), "LineID", str(line.position))
        _ram(_ram(item, "SpecifiedTradeProduct"), "Name", line.description)
        price = _ram(_ram(item, "SpecifiedLineTradeAgreement"), "NetPriceProductTradePrice")
        _ram(price, "ChargeAmount", format(line.unit_price, "f"))
        if line.base_quantity != 1:
            _ram(price, "BasisQuantity", _quantity(line.base_quantity), unitCode=line.unit_code)
        delivery = _ram(item, "SpecifiedLineTradeDelivery")
        _ram(delivery, "BilledQuantity", _quantity(line.quantity), unitCode=line.unit_code)
        settlement = _ram(item, "SpecifiedLineTradeSettlement")
        tax = _ram(settlement, "ApplicableTradeTax")
        _ram(tax, "TypeCode", "VAT")
        _ram(tax, "CategoryCode", "S")
        _ram(tax, "RateApplicablePercent", _amount(line.vat_rate))
        summation = _ram(settlement, "SpecifiedTradeSettlementLineMonetarySummation")
        _ram(summation, "LineTotalAmount", _amount(line.net_amount))

    agreement = _ram(transaction, "ApplicableHeaderTradeAgreement")
    if invoice.buyer.chorus_service_code:
        _ram(agreement, "BuyerReference", invoice.buyer.chorus_service_code)
    _party(agreement, "SellerTradeParty", invoice.seller, seller=True)
    _party(agreement, "BuyerTradeParty", invoice.buyer, seller=False)
    if invoice.buyer.engagement_number:
        _ram(_ram(agreement, "BuyerOrderReferencedDocument"), "IssuerAssignedID", invoice.buyer.engagement_number)
    if invoice.buyer.contract_reference:
        _ram(_ram(agreement, "ContractReferencedDocument"), "IssuerAssignedID", invoice.buyer.contract_reference)
    # BT-72: the service is delivered through the billed month; an empty delivery element draws a warning.
    event = _ram(_ram(transaction, "ApplicableHeaderTradeDelivery"), "ActualDeliverySupplyChainEvent")
    _date(event, "OccurrenceDateTime", invoice.period_end)

    settlement = _ram(transaction, "ApplicableHeaderTradeSettlement")
    _ram(settlement, "InvoiceCurrencyCode", invoice.currency)
    means = _ram(settlement, "SpecifiedTradeSettlementPaymentMeans")
    _ram(means, "TypeCode", PAYMENT_MEANS_SEPA if invoice.seller.iban else PAYMENT_MEANS_TRANSFER)
    if invoice.seller.iban:
        _ram(_ram(means, "PayeePartyCreditorFinancialAccount"), "IBANID", invoice.seller.iban)
    tax = _ram(settlement, "ApplicableTradeTax")
    _ram(tax, "CalculatedAmount", _amount(invoice.total_vat))
    _ram(tax, "TypeCode", "VAT")
    _ram(tax, "BasisAmount", _amount(invoice.total_ht))
    _ram(tax, "CategoryCode", "S")
    _ram(tax, "RateApplicablePercent", _amount(invoice.vat_rate))
    period = _ram(settlement, "BillingSpecifiedPeriod")
    _date(period, "StartDateTime", invoice.period_start)
    _date(period, "EndDateTime", invoice.period_end)
    if invoice.due_date is not None:
        _date(_ram(settlement, "SpecifiedTradePaymentTerms"), "DueDateDateTime", invoice.due_date)
    totals = _ram(settlement, "SpecifiedTradeSettlementHeaderMonetarySummation")
    _ram(totals, "LineTotalAmount", _amount(sum((line.net_amount for line in invoice.lines), Decimal(0))))
    _ram(totals, "TaxBasisTotalAmount", _amount(invoice.total_ht))
    _ram(totals, "TaxTotalAmount", _amount(invoice.total_vat), currencyID=invoice.currency)
    _ram(totals, "GrandTotalAmount", _amount(invoice.total_ttc))
    _ram(totals, "DuePayableAmount", _amount(invoice.total_ttc))
    if invoice.credit_of_number is not None:
        reference = _ram(settlement, "InvoiceReferencedDocument")
        _ram(reference, "IssuerAssignedID", invoice.credit_of_number)
        if invoice.credit_of_issue_date is not None:
            _date(reference, "FormattedIssueDateTime", invoice.credit_of_issue_date, ns=QDT)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
