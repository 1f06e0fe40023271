"""Abbreviations the sentence chunker must not take for sentence ends, per language.

Two kinds, written lower-case and without their final period:

* ``TITLES`` come before what they qualify ("Dr. Smith", "z.B. Äpfel", "p.ej. esto") and never
  end a sentence.
* ``ABBREVIATIONS`` can close a sentence ("... and so on, etc.") or go on with it ("approx. 5
  km", "etc. are fruit"). The rule (:func:`voicechat.pipeline.sentence_ends.decide_period`):
  such an abbreviation ends its sentence when the next word starts with anything but a
  lower-case letter or a digit (an upper-case letter, a quote, a new line, the end of the
  stream), and goes on before a lower-case letter or a digit. German capitalizes its nouns, so
  there "usw. Dann" and "ca. Hundert" are cut alike; the German words that go on before nouns
  ("inkl. Versand", the "z" of "z. B.") are titles for that reason.
"""

from __future__ import annotations

__all__ = ["ABBREVIATIONS", "ORDINAL_LEADS", "TITLES"]

_ENGLISH_TITLES = (
    "mr mrs ms mx dr prof rev hon st mt gen col capt lt sgt gov sen pres supt vs e.g i.e cf viz"
)
_GERMAN_TITLES = (
    "frl z.b d.h u.a o.ä vgl bzw z.t s.o s.u u.u i.d.r u.v.m inkl exkl zzgl bspw sog geb z d u"
)
_FRENCH_TITLES = "mme mlle p.ex c.-à-d"
_SPANISH_TITLES = "sr sra srta sres dña dra lic ing ud uds p.ej vd vds"

_ENGLISH = (
    "etc inc ltd co corp llc plc jr sr esp approx appx dept depts est ext al no nos nr vol vols "
    "fig figs eq eqs ed eds pp ch chap sec secs ca min max avg misc incl excl govt assn bros "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun "
    "ft hr hrs sq oz lb lbs pt pts qt yd mi km kg mg ml cm mm temp tel tbsp tsp vers ver op ref "
    "dept univ ave blvd rd"
)
_GERMAN = "usw ggf evtl gest str nr abs art jh mio mrd tsd"
_FRENCH = "env av apr bd éd vol chap cie ex éts"
_SPANISH = "aprox pág págs núm cía avda admón dpto tlf"

TITLES = frozenset(
    " ".join((_ENGLISH_TITLES, _GERMAN_TITLES, _FRENCH_TITLES, _SPANISH_TITLES)).split()
)
ABBREVIATIONS = frozenset(" ".join((_ENGLISH, _GERMAN, _FRENCH, _SPANISH)).split()) - TITLES

# German writes ordinals with a period ("am 3. Mai", "der 2. Platz"): a number of one or two
# digits after one of these words never ends a sentence.
ORDINAL_LEADS = frozenset(
    "der die das dem den des am im zum zur vom beim ab bis seit ihr ihre sein seine jeder jede "
    "jedes jeden dieser diese dieses".split()
)
