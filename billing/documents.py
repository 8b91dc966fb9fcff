"""PDF/A-3b documents with weasyprint, the CII XML embedded with factur-x, rendered in a process pool."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import facturx
import msgspec

from billing.cii import build_cii
from billing.invoice_html import invoice_html
from billing.model import Invoice
from billing.validation import check_xsd

# Why a reduced font: weasyprint subsets every embedded font per document, and the full DejaVu Sans is large (OpenType
# layout tables, thousands of glyphs). Measured on a one-page invoice: ~0.41 s with fontTools subsetting, ~85 ms with
# HarfBuzz's (Debian libharfbuzz-subset0, a system package of billing), ~47 ms when the family is reduced once per
# machine to the characters French invoices use, without layout tables (no kerning).
FONT_FILES = {"Vigie-Regular.ttf": "DejaVuSans.ttf", "Vigie-Bold.ttf": "DejaVuSans-Bold.ttf"}
# Latin-1, Latin Extended-A (œ, Œ…), and the typography the documents print (€, dashes, quotes, spaces, ≤ ≥ ·).
FONT_CODEPOINTS = [
    *range(0x20, 0x7F), *range(0xA0, 0x180), 0x2009, 0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2026, 0x202F, 0x20AC, 0x2264, 0x2265, 0x2212,
]
_lock = threading.Lock()


def prepare_fonts(source_dir: Path, cache_dir: Path) -> Path:
    """The reduced font files, made once from the system's DejaVu (Debian fonts-dejavu-core) into `cache_dir`."""
    with _lock:
        if all((cache_dir / name).is_file() for name in FONT_FILES):
            return cache_dir
        from fontTools import subset  # only needed the first time on a machine

        logging.getLogger("fontTools").setLevel(logging.ERROR)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for name, source in FONT_FILES.items():
            options = subset.Options()
            options.layout_features = []
            options.drop_tables += ["GPOS", "GSUB", "GDEF", "kern", "FFTM"]
            options.hinting = False
            options.name_IDs = ["*"]
            options.notdef_outline = True
            font = subset.load_font(str(source_dir / source), options)
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=FONT_CODEPOINTS)
            subsetter.subset(font)
            partial = cache_dir / f".{name}.partial"
            subset.save_font(font, str(partial), options)
            font.close()
            partial.replace(cache_dir / name)
        return cache_dir


class _Weasy:
    """weasyprint and its font configuration, loaded once per process."""

    font_config: Any = None

    @classmethod
    def write_pdf(cls, html: str, font_dir: Path) -> bytes:
        from weasyprint import HTML
        from weasyprint.text.fonts import FontConfiguration

        if cls.font_config is None:
            logging.getLogger("fontTools").setLevel(logging.ERROR)
            cls.font_config = FontConfiguration()
        # weasyprint 70 opens its sRGB profile for the PDF/A output intent and never closes it: the ResourceWarning
        # is its own. Documents render in pool processes (single-threaded), where silencing it here is safe.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            pdf: bytes = HTML(string=html, base_url=str(font_dir) + "/").write_pdf(
                pdf_variant="pdf/a-3b", font_config=cls.font_config
            )
        return pdf


def render_pdf(html: str, font_dir: Path) -> bytes:
    """HTML → PDF/A-3b (the markers: output intent, XMP pdfaid, embedded fonts)."""
    return _Weasy.write_pdf(html, font_dir)


@dataclass(frozen=True)
class Rendered:
    invoice_id: str
    pdf: bytes
    sha256: str
    render_ms: float


def facturx_document(invoice: Invoice, font_dir: Path) -> bytes:
    """The Factur-X PDF of an invoice: the printable PDF/A-3b with its CII XML embedded (checked against the XSD
    first; the schematron runs in the tests and the benchmark, see billing.validation)."""
    xml = build_cii(invoice)
    check_xsd(xml)
    pdf = render_pdf(invoice_html(invoice), font_dir)
    title = f"{'Avoir' if invoice.kind == 'credit_note' else 'Facture'} {invoice.number}"
    result: bytes = facturx.generate_from_binary(
        pdf,
        xml,
        flavor="factur-x",
        level="en16931",
        check_xsd=False,
        pdf_metadata={
            "author": invoice.seller.name,
            "keywords": "Factur-X, facture",
            "title": title,
            "subject": f"{title} du {invoice.issue_date:%d/%m/%Y}, {invoice.buyer.name}",
        },
        lang="fr-FR",
    )
    return result


def _render_encoded(payload: bytes, font_dir: str) -> Rendered:
    """Pool entry point: the invoice travels msgspec-encoded (cheap to pickle, no live objects)."""
    started = time.perf_counter()
    invoice = msgspec.msgpack.decode(payload, type=Invoice)
    pdf = facturx_document(invoice, Path(font_dir))
    return Rendered(str(invoice.id), pdf, hashlib.sha256(pdf).hexdigest(), (time.perf_counter() - started) * 1000)


def _warm(font_dir: str) -> None:
    """Pool initializer: import weasyprint and load the fonts before the first document."""
    render_pdf("<html><body>·</body></html>", Path(font_dir))


def _render_html(html: str, font_dir: str) -> bytes:
    return render_pdf(html, Path(font_dir))


class DocumentRenderer:
    """Renders documents in `workers` spawned processes (safe beside an event loop): weasyprint holds the GIL for the
    whole layout, so an API keeps serving while a document renders, and a run uses every core."""

    def __init__(self, font_dir: Path, workers: int = 1) -> None:
        self._font_dir = font_dir
        self.workers = workers
        self._pool: Executor | None = None
        # Milliseconds each document took inside its process (whole pipeline): for logs and the benchmark.
        self.render_ms: list[float] = []

    def _executor(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm,
                initargs=(str(self._font_dir),),
            )
        return self._pool

    async def render(self, invoices: Sequence[Invoice]) -> list[Rendered]:
        payloads = [msgspec.msgpack.encode(invoice) for invoice in invoices]
        loop = asyncio.get_running_loop()
        executor = self._executor()
        rendered = list(
            await asyncio.gather(
                *(loop.run_in_executor(executor, _render_encoded, p, str(self._font_dir)) for p in payloads)
            )
        )
        self.render_ms.extend(r.render_ms for r in rendered)
        return rendered

    async def render_html(self, html: str) -> bytes:
        """Any other document (the monthly report): HTML to PDF/A-3b in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), _render_html, html, str(self._font_dir))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
