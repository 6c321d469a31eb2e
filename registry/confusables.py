"""Latin look-alike letters of other scripts: the confusables subset the name key folds.

Data for ``registry.names`` (see ``fold_lookalikes`` there), shipped in the code because nothing
may be downloaded at run time.

``TS39_LATIN_PROTOTYPES`` was generated from the Unicode Security Mechanisms data file
``confusables.txt`` (UTS #39, version 14.0.0, 2021-05-29; Unicode terms of use apply) by
keeping every single-code-point entry

- whose source is a non-ASCII letter named CYRILLIC, GREEK, COPTIC, ARMENIAN, CHEROKEE, LISU,
  CANADIAN SYLLABICS or LATIN (math alphanumerics, full-width and letter-like forms are not
  listed: NFKC already folds them to ASCII before this table is used);
- whose prototype is one ASCII letter, optionally followed by combining marks (``Ꞵ`` -> ``B``;
  ``η`` -> ``n̩`` is kept as ``n``, since the key drops combining marks anyway);
- that NFKC leaves unchanged and, for Latin letters, that NFD does not already reduce to an
  ASCII letter (``é``), and that ``registry.names._UNDECOMPOSED_LATIN`` does not already map
  (so ``ʋ`` stays ``v`` and ``Ɲ`` stays ``ny``, as in existing keys).

TS #39 folds ``I``, ``l`` and ``1`` into ``l``; this key keeps ``i`` and ``l`` apart, so an
upper-case (or Lisu) source whose prototype is ``l`` maps to ``I`` (Greek ``Ι``, Cyrillic ``І``
and ``Ӏ``, Coptic ``Ⲓ``, Lisu ``ꓲ``).

``LOWERCASE_LOOKALIKES`` adds lower-case letters that look like a Latin letter in print but whose
TS #39 prototype is not a plain Latin letter (a small capital such as ``ʙ``/``ʜ``/``ᴛ``, or
``rn`` for ``м``), or that TS #39 does not list (Greek ``κ``, ``τ``, ``χ``, ``ε``).

The case of a target does not matter: the key is case-folded afterwards. Digits are not
mapped (``0`` for ``O``): a name has no digits and the key treats them as separators.
Precomposed letters (``Ё``, ``Ά``) and Cherokee small letters are derived from this table in
``registry.names``.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LOWERCASE_LOOKALIKES", "TS39_LATIN_PROTOTYPES"]

# fmt: off
TS39_LATIN_PROTOTYPES: Final[dict[str, str]] = {
    # Latin
    "\u0180": "b", "\u0182": "b", "\u0183": "b", "\u0184": "b", "\u0189": "D", "\u018c": "d",
    "\u018d": "g", "\u0191": "F", "\u0192": "f", "\u0196": "I", "\u0197": "I", "\u019a": "l",
    "\u019e": "n", "\u019f": "O", "\u01a5": "p", "\u01a6": "R", "\u01ad": "t", "\u01ae": "T",
    "\u01b5": "Z", "\u01b6": "z", "\u01bd": "s", "\u01c0": "l", "\u01e4": "G", "\u01e5": "g",
    "\u01fe": "O", "\u0224": "Z", "\u0225": "z", "\u023c": "c", "\u023e": "T", "\u0244": "U",
    "\u0246": "E", "\u0247": "e", "\u0248": "J", "\u0249": "j", "\u024d": "r", "\u024e": "Y",
    "\u024f": "y", "\u0251": "a", "\u0256": "d", "\u0260": "g", "\u0261": "g", "\u0263": "y",
    "\u0266": "h", "\u0268": "i", "\u0269": "i", "\u026a": "i", "\u026b": "l", "\u026d": "l",
    "\u026f": "w", "\u0273": "n", "\u0275": "o", "\u027c": "r", "\u027d": "r", "\u0282": "s",
    "\u028f": "y", "\u0290": "z", "\u02a0": "q", "\u1d04": "c", "\u1d0f": "o", "\u1d11": "o",
    "\u1d1c": "u", "\u1d20": "v", "\u1d21": "w", "\u1d22": "z", "\u1d6e": "f", "\u1d70": "n",
    "\u1d72": "r", "\u1d74": "s", "\u1d75": "t", "\u1d76": "z", "\u1d7b": "i", "\u1d7c": "i",
    "\u1d7d": "p", "\u1d7e": "u", "\u1d83": "g", "\u1d8c": "y", "\u1e9d": "f", "\u1eff": "y",
    "\u2c67": "H", "\u2c69": "K", "\ua731": "s", "\ua740": "K", "\ua74a": "O", "\ua74b": "o",
    "\ua761": "w", "\ua798": "F", "\ua799": "f", "\ua79f": "u", "\ua7b2": "J", "\ua7b3": "X",
    "\ua7b4": "B", "\uab32": "e", "\uab35": "f", "\uab3d": "o", "\uab3e": "o", "\uab47": "r",
    "\uab48": "r", "\uab4e": "u", "\uab52": "u", "\uab5a": "y",
    # Greek
    "\u037f": "J", "\u0391": "A", "\u0392": "B", "\u0395": "E", "\u0396": "Z", "\u0397": "H",
    "\u0398": "O", "\u0399": "I", "\u039a": "K", "\u039c": "M", "\u039d": "N", "\u039f": "O",
    "\u03a1": "P", "\u03a4": "T", "\u03a5": "Y", "\u03a7": "X", "\u03b1": "a", "\u03b3": "y",
    "\u03b7": "n", "\u03b8": "O", "\u03b9": "i", "\u03bd": "v", "\u03bf": "o", "\u03c1": "p",
    "\u03c3": "o", "\u03c5": "u", "\u03dc": "F", "\u03f3": "j", "\u03fa": "M", "\u1d26": "r",
    "\U0001d20d": "V", "\U0001d213": "F", "\U0001d216": "R", "\U0001d21a": "O", "\U0001d22a": "L",
    # Cyrillic
    "\u0405": "S", "\u0406": "I", "\u0408": "J", "\u0410": "A", "\u0411": "b", "\u0412": "B",
    "\u0415": "E", "\u041a": "K", "\u041c": "M", "\u041d": "H", "\u041e": "O", "\u0420": "P",
    "\u0421": "C", "\u0422": "T", "\u0423": "Y", "\u0425": "X", "\u042c": "b", "\u0430": "a",
    "\u0433": "r", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c", "\u0443": "y",
    "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0458": "j", "\u045b": "h", "\u0461": "w",
    "\u0462": "b", "\u0463": "b", "\u0472": "O", "\u0473": "o", "\u0474": "V", "\u0475": "v",
    "\u047d": "w", "\u048c": "b", "\u048d": "b", "\u0493": "r", "\u049a": "K", "\u049e": "K",
    "\u04a2": "H", "\u04aa": "C", "\u04ab": "c", "\u04ac": "T", "\u04ae": "Y", "\u04af": "y",
    "\u04b0": "Y", "\u04b1": "y", "\u04b2": "X", "\u04bb": "h", "\u04bd": "e", "\u04bf": "e",
    "\u04c0": "I", "\u04c7": "H", "\u04c9": "H", "\u04cd": "M", "\u04cf": "i", "\u04e8": "O",
    "\u04e9": "o", "\u0501": "d", "\u050c": "G", "\u051b": "q", "\u051c": "W", "\u051d": "w",
    "\ua647": "i", "\ua695": "h",
    # Armenian
    "\u054d": "U", "\u054f": "S", "\u0555": "O", "\u0561": "w", "\u0563": "q", "\u0566": "q",
    "\u0570": "h", "\u0578": "n", "\u057c": "n", "\u057d": "u", "\u0581": "g", "\u0584": "f",
    "\u0585": "o",
    # Cherokee
    "\u13a0": "D", "\u13a1": "R", "\u13a2": "T", "\u13a5": "i", "\u13a9": "Y", "\u13aa": "A",
    "\u13ab": "J", "\u13ac": "E", "\u13b3": "W", "\u13b7": "M", "\u13bb": "H", "\u13bd": "Y",
    "\u13be": "O", "\u13c0": "G", "\u13c2": "h", "\u13c3": "Z", "\u13cc": "U", "\u13cf": "b",
    "\u13d2": "R", "\u13d4": "W", "\u13d5": "S", "\u13d9": "V", "\u13da": "S", "\u13de": "L",
    "\u13df": "C", "\u13e2": "P", "\u13e6": "K", "\u13e7": "d", "\u13eb": "O", "\u13f2": "h",
    "\u13f3": "G", "\u13f4": "B", "\uab74": "o", "\uab75": "i", "\uab81": "r", "\uab83": "w",
    "\uab8e": "o", "\uab93": "z", "\uab9c": "u", "\uaba9": "v", "\uabaa": "s", "\uabaf": "c",
    "\uabbb": "o",
    # Canadian Syllabics
    "\u142f": "V", "\u144c": "U", "\u146d": "P", "\u146f": "d", "\u1472": "b", "\u1473": "b",
    "\u148d": "J", "\u14aa": "L", "\u1541": "x", "\u157c": "H", "\u157d": "x", "\u1587": "R",
    "\u15af": "b", "\u15b4": "F", "\u15c5": "A", "\u15de": "D", "\u15ea": "D", "\u15f0": "M",
    "\u15f7": "B", "\u166d": "X", "\u166e": "x",
    # Coptic
    "\u2c85": "r", "\u2c8e": "H", "\u2c92": "I", "\u2c94": "K", "\u2c98": "M", "\u2c9a": "N",
    "\u2c9e": "O", "\u2c9f": "o", "\u2ca2": "P", "\u2ca3": "p", "\u2ca4": "C", "\u2ca5": "c",
    "\u2ca6": "T", "\u2ca8": "Y", "\u2cac": "X", "\u2cd0": "L", "\U000102f5": "Z",
    # Lisu
    "\ua4d0": "B", "\ua4d1": "P", "\ua4d2": "d", "\ua4d3": "D", "\ua4d4": "T", "\ua4d6": "G",
    "\ua4d7": "K", "\ua4d9": "J", "\ua4da": "C", "\ua4dc": "Z", "\ua4dd": "F", "\ua4df": "M",
    "\ua4e0": "N", "\ua4e1": "L", "\ua4e2": "S", "\ua4e3": "R", "\ua4e6": "V", "\ua4e7": "H",
    "\ua4ea": "W", "\ua4eb": "X", "\ua4ec": "Y", "\ua4ee": "A", "\ua4f0": "E", "\ua4f2": "I",
    "\ua4f3": "O", "\ua4f4": "U",
}

LOWERCASE_LOOKALIKES: Final[dict[str, str]] = {
    # Cyrillic: ve, ka, em, en, te, pe, soft sign
    "\u0432": "b", "\u043a": "k", "\u043c": "m", "\u043d": "h", "\u0442": "t", "\u043f": "n",
    "\u044c": "b",
    # Greek: beta, epsilon, kappa, mu, tau, chi, omega
    "\u03b2": "b", "\u03b5": "e", "\u03ba": "k", "\u03bc": "u", "\u03c4": "t", "\u03c7": "x",
    "\u03c9": "w",
}
# fmt: on
