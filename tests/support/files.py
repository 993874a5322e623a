"""POS export files and their mapping specs shared by the files, collector and dry-run tests."""

from __future__ import annotations

from typing import Any

CSV_SPEC: dict[str, Any] = {
    "name": "caisse-fr", "format": "csv", "encoding": "cp1252", "delimiter": ";", "decimal": ",",
    "date_format": "%d/%m/%Y", "time_format": "%H:%M", "timezone": "Europe/Paris", "currency": "EUR",
    "prices_include_tax": True, "stores": {"PAR01": "paris-01"}, "kinds": {"V": "SALE", "R": "REFUND", "A": "VOID"},
    "payment_methods": {"CB": "CARD", "ESP": "CASH"},
    "fields": {"store": "Magasin", "ticket": "Ticket", "date": "Date", "time": "Heure", "terminal": "Caisse",
               "kind": "Type", "original_ticket": "Réf", "sku": "Article", "description": "Libellé",
               "quantity": "Qté", "unit_price": "PU", "line_discount": "Remise", "tax_amount": "TVA",
               "payment_method": "Règlement", "category": "Catégorie"},
}  # fmt: skip


CSV_HEADER = "Magasin;Ticket;Date;Heure;Caisse;Type;Réf;Article;Libellé;Qté;PU;Remise;TVA;Règlement;Catégorie"


CSV_GOOD = [
    "PAR01;1001;14/03/2026;10:15;C1;V;;SKU1;Café crème;2;2,50;0,00;0,83;CB;Boissons",
    "PAR01;1001;14/03/2026;10:15;C1;V;;SKU2;Croissant;1;1,20;0,20;0,83;CB;Viennoiserie",
    "PAR01;1002;14/03/2026;10:20;C1;R;1001;SKU2;Croissant;-1;1,20;0,00;-0,11;ESP;Viennoiserie",
]


XML_SPEC: dict[str, Any] = {
    "name": "kasse-de", "format": "xml", "currency": "EUR", "prices_include_tax": True,
    "date_format": "%Y-%m-%dT%H:%M:%S%z", "ticket_xpath": "/Export/Ticket", "line_xpath": "Line",
    "payment_xpath": "Payment", "payment_fields": {"method": "@method", "amount": "@amount"},
    "stores": {"BER": "berlin-01"},
    "fields": {"ticket": "@id", "store": "@store", "terminal": "@till", "kind": "@type", "occurred_at": "@at",
               "tax_amount": "Tax", "sku": "@sku", "quantity": "@qty", "unit_price": "@price",
               "line_discount": "@discount", "description": "Name", "category": "Cat"},
}  # fmt: skip


XML_GOOD = """<?xml version="1.0" encoding="ISO-8859-1"?>
<Export>
  <Ticket id="T-1" store="BER" till="3" type="SALE" at="2026-03-14T10:15:00+01:00">
    <Line sku="A1" qty="1" price="19.99" discount="0"><Name>Schal grün</Name><Cat>Accessoires</Cat></Line>
    <Line sku="B2" qty="2" price="5.00" discount="1.00"/>
    <Tax>4.63</Tax>
    <Payment method="CASH" amount="10.00"/>
    <Payment method="CARD" amount="18.99"/>
  </Ticket>
  <Ticket id="T-2" store="BER" till="3" type="VOID" at="2026-03-14T10:17:00+01:00">
    <Line sku="B2" qty="1" price="5.00" discount="0"/>
    <Tax>0.80</Tax>
  </Ticket>
</Export>
"""
