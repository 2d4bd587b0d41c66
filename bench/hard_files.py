"""Stand-ins for the files that held issue 18's held-out sync, for ``bench/ingest.py --real``.

The held-out sync of ~900 real-world files (issue 18) did not finish in 30 minutes: one
475 KB Russian .docx with a wide table (2,786 elements, a ~760-character header row,
392k MiniLM tokens) became 17,732 chunks, and two workbooks had single sheets of 2.4M and
2.0M characters (7,576 and 19,454 rows). Those files are kept back for checking, so this
writes files of the same shape and size from a fixed seed: what they cost the sync, before
and after, is what the 3x goal is about. The words are generated (Russian business
vocabulary, English ledger columns), not copied from anywhere.

    .venv/bin/python bench/hard_files.py /tmp/hard
    .venv/bin/python bench/ingest.py --real /tmp/hard --baseline-commit 0390c24 \
        --cap 900 --skip-baseline

Prints one JSON line per file written (name, bytes, characters, rows).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import docx
import openpyxl

# Column names of a Russian supply contract register: 12 columns, a ~760-character header.
RU_COLUMNS = [
    "Порядковый номер позиции в реестре договоров поставки",
    "Наименование поставщика согласно учредительным документам",
    "Идентификационный номер налогоплательщика поставщика",
    "Номер и дата заключения договора поставки товаров",
    "Предмет договора и краткое описание поставляемой продукции",
    "Цена договора с учётом налога на добавленную стоимость, руб.",
    "Срок исполнения обязательств по договору поставки",
    "Место поставки товара и условия приёмки продукции",
    "Ответственное структурное подразделение заказчика и контактное лицо",
    "Сведения об исполнении договора и подписанных актах приёмки-передачи",
    "Примечание об изменениях и дополнительных соглашениях",
    "Статус договора на дату формирования настоящего реестра (по данным учёта)",
]
RU_WORDS = str.split(
    "поставка оборудование договор счёт акт приёмка склад накладная оплата аванс "
    "сертификат гарантия монтаж доставка комплектация запчасти обслуживание ремонт "
    "филиал отдел закупка тендер заявка спецификация количество стоимость рубль "
    "исполнено продлено расторгнуто согласовано подписано ожидает утверждено"
)
EN_WORDS = str.split(
    "invoice supplier payment credit debit warehouse freight order return discount "
    "account ledger transfer refund shipment pallet customs insurance voucher accrual"
)


def russian_register(path: Path, rows: int = 2750, seed: int = 0) -> dict[str, object]:
    """A contract register: a heading, a few paragraphs, a 12-column table of ``rows`` rows."""
    rnd = random.Random(seed)
    document = docx.Document()
    document.add_heading("Реестр договоров поставки за отчётный период", 1)
    for _ in range(30):
        document.add_paragraph(" ".join(rnd.choices(RU_WORDS, k=40)).capitalize() + ".")
    table = document.add_table(rows=1, cols=len(RU_COLUMNS))
    for cell, name in zip(table.rows[0].cells, RU_COLUMNS, strict=True):
        cell.text = name
    chars = 0
    for r in range(rows):
        values = [
            str(r + 1),
            f"ООО «{rnd.choice(RU_WORDS).capitalize()} {rnd.choice(RU_WORDS)}»",
            f"{rnd.randrange(10**9, 10**10)}",
            f"№ {rnd.randrange(1000, 9999)}-П от {rnd.randrange(1, 28):02d}.03.2024",
            " ".join(rnd.choices(RU_WORDS, k=6)),
            f"{rnd.randrange(10_000, 9_000_000):,}".replace(",", " "),
            f"до {rnd.randrange(1, 28):02d}.{rnd.randrange(1, 12):02d}.2025",
            " ".join(rnd.choices(RU_WORDS, k=3)),
            rnd.choice(RU_WORDS),
            " ".join(rnd.choices(RU_WORDS, k=4)),
            " ".join(rnd.choices(RU_WORDS, k=2)),
            rnd.choice(["исполнено", "в работе", "расторгнуто", "продлено"]),
        ]
        chars += sum(len(v) for v in values)
        for cell, value in zip(table.add_row().cells, values, strict=True):
            cell.text = value
    document.save(str(path))
    return {"rows": rows, "chars": chars, "header_chars": len(" | ".join(RU_COLUMNS))}


def ledger_workbook(path: Path, rows: int, words: int, seed: int) -> dict[str, object]:
    """One sheet of ``rows`` ledger rows; ``words`` generated words in the memo column."""
    rnd = random.Random(seed)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Ledger")
    head = ["Date", "Entry", "Account", "Counterparty", "Debit", "Credit", "Currency", "Memo"]
    sheet.append(head)
    chars = 0
    for r in range(rows):
        row = [
            f"2024-{rnd.randrange(1, 13):02d}-{rnd.randrange(1, 29):02d}",
            f"JE-{r:06d}",
            f"{rnd.randrange(1000, 9999)}-{rnd.choice(EN_WORDS)}",
            f"{rnd.choice(EN_WORDS).title()} {rnd.choice(EN_WORDS).title()} Ltd",
            round(rnd.uniform(0, 50_000), 2),
            round(rnd.uniform(0, 50_000), 2),
            rnd.choice(["EUR", "USD", "GBP"]),
            " ".join(rnd.choices(EN_WORDS, k=words)),
        ]
        chars += sum(len(str(v)) for v in row)
        sheet.append(row)
    book.save(str(path))
    return {"rows": rows, "chars": chars}


def write_hard_files(dest: Path) -> list[dict[str, object]]:
    (dest / "docx").mkdir(parents=True, exist_ok=True)
    (dest / "xlsx").mkdir(parents=True, exist_ok=True)
    made = [
        (dest / "docx" / "contract-register-ru.docx", lambda p: russian_register(p)),
        (dest / "xlsx" / "ledger-19k-rows.xlsx", lambda p: ledger_workbook(p, 19_454, 5, 1)),
        (dest / "xlsx" / "ledger-7k-wide.xlsx", lambda p: ledger_workbook(p, 7_576, 32, 2)),
    ]
    lines = []
    for path, write in made:
        facts = write(path)
        size = path.stat().st_size
        lines.append({"name": "hard_file", "file": path.name, "bytes": size, **facts})
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    for line in write_hard_files(args.dest):
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
