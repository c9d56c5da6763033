"""`python -m messages catalogues [--add LOCALE]`: extract, update and compile the catalogues."""

import argparse

from messages import catalogues

parser = argparse.ArgumentParser(prog="python -m messages")
commands = parser.add_subparsers(dest="command", required=True)
run = commands.add_parser("catalogues", help="extract the words, update every catalogue, compile")
run.add_argument("--add", action="append", default=[], metavar="LOCALE", help="start a language")
arguments = parser.parse_args()
catalogues.run(tuple(arguments.add))
for locale in catalogues.translated_locales():
    print(f"{catalogues.po_path(locale)}: updated and compiled")
