"""Imported only by the /second handler of app.py."""
import decimal
import xml.dom.minidom


def render(items):
    doc = xml.dom.minidom.Document()
    root = doc.createElement("report")
    doc.appendChild(root)
    total = decimal.Decimal("0")
    for i, name in enumerate(items, start=1):
        price = decimal.Decimal(i) / decimal.Decimal(3)
        total += price
        el = doc.createElement("item")
        el.setAttribute("name", name)
        el.setAttribute("price", str(price.quantize(decimal.Decimal("0.01"))))
        root.appendChild(el)
    root.setAttribute("total", str(total.quantize(decimal.Decimal("0.01"))))
    return doc.toprettyxml(indent="  ")
