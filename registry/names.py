"""Name and document-number normalisation: the ONE matching key used for every name search.

The same function feeds indexed search (``name_key``), fuzzy matching (``name_similarity``) and,
later, HMAC pseudonyms shared with the partner country, so its output must be deterministic,
stable across releases and idempotent. Changing any table or rule here changes stored keys and
shared pseudonyms: treat edits as a data migration.

Pipeline of ``normalise_name`` (``fold_lookalikes`` is steps 1-2):

1. NFKC (folds Arabic presentation forms, full-width letters, mathematical alphanumerics), then
   every invisible character is removed: format characters (category Cf: zero-width space and
   joiners, bidirectional overrides and isolates, soft hyphen, BOM...) and the other
   default-ignorable code points (variation selectors, combining grapheme joiner, Hangul
   fillers). Someone typing ``OUED<ZWSP>RAOGO`` or a right-to-left override gets the key of
   ``OUEDRAOGO``, not two tokens; Latin text under a right-to-left override is taken in the
   order it is displayed. ``registry.text`` refuses these characters at input; this step is
   for what arrives otherwise (rows stored earlier, synced records, imports).
2. Confusables skeleton (Unicode TS #39) for Latin: a Cyrillic, Greek, Armenian, Cherokee,
   Coptic, Lisu... letter that looks like a Latin letter becomes that letter (Cyrillic ``А``,
   Greek ``Ο`` -> ``A``, ``O``); the table and its provenance are in ``registry.confusables``.
   Letters of other scripts (Arabic, N'Ko, Tifinagh...) are left to the steps below.
3. Arabic script is folded (alef variants, alef maksura/yeh, teh marbuta/heh, hamza carriers,
   harakat and tatweel) and transliterated word by word: a dictionary of common names gives
   their usual Latin spelling, other words fall back to a letter-by-letter consonant skeleton.
4. Casefold, NFKD, drop combining marks (accents), map the few Latin letters NFKD does not
   decompose (ø, ł, æ, Fula ɓ ɗ ƴ ŋ ɲ ...). Prenasalised ``N'Diaye``/``M'Bodj`` join up.
   Anything that is not ``a``-``z`` becomes a separator (hyphens, apostrophes, dots, digits...).
5. Every token is folded to a phonetic *skeleton* (see ``_skeleton``), then looked up in the
   transliteration-variant table ``_VARIANTS`` that maps clear variants to one spelling.
6. Particles are resolved across tokens: ``Abd El Kader``/``Abdel Kader`` -> ``abdelkader``;
   the article ``El``/``Al``/``Ul`` is glued to the next token (``El-Hadj`` -> ``elhadj``);
   a lone ``O`` (``Mohamed O. Ahmed``) is the abbreviation of ``ould``.

The result is a matching key, not a display form: tokens outside the variant table come out as
skeletons (``Diallo`` -> ``dialo``, ``Touré`` -> ``ture``).

Steps 1-2 (added with the look-alike folding) leave names written in Latin letters, with or
without accents, exactly as before: stored keys (``traveller.name_key``, national's
``traveller_name_key`` dictionary, ``watchlist_entry.name_key``) and pseudonyms of such names
stay valid. Only names that contained invisible characters or look-alike letters, or Arabic
spelling variants, get a new key (exotic Latin letters such as ``ƀ`` or ``ɑ``, which used to
fall out of the key, now count as their look-alike). The watchlist matcher keys non-ASCII
listed names again when it loads, and ``borderpost db rekey-names``
(``registry.services.name_keys``) brings stored traveller keys up to date.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from rapidfuzz import fuzz, process

from registry.confusables import LOWERCASE_LOOKALIKES, TS39_LATIN_PROTOTYPES

__all__ = [
    "fold_lookalikes",
    "form_similarity",
    "name_key",
    "candidate_patterns",
    "name_similarity",
    "names_match",
    "normalise_document_number",
    "normalise_name",
    "query_form",
    "query_score",
    "rank_by_query",
    "similarity_form",
]

# --------------------------------------------------------------------------------------------
# Transliteration-variant table (Latin).
#
# canonical spelling -> space-separated clear transliteration variants of the SAME name. Only
# variants of one Arabic/Islamic name written differently across French, English and local
# conventions are merged. Deliberately kept DISTINCT (different names in use, or too risky to
# merge):
#   Mamadou (not Mohamed), Mohamedou, Ahmedou, Aliou/Aliyu (not Ali), Alioune, Aissata/Aissatou
#   (not Aicha), Mariama (not Mariam), Abdou (not Abdel), Bakary (not Boubacar),
#   Hassan vs Hussein.
# Keys and variants are compiled through ``_skeleton`` so only genuinely different skeletons need
# listing; listing extra spellings is harmless.
# --------------------------------------------------------------------------------------------
_VARIANT_TABLE: dict[str, str] = {
    # particles
    "ould": "wuld weld",
    "mint": "bint bent ment",
    "ben": "bin ibn iben ebn",
    # names
    "mohamed": (
        "mohammed muhammad mohammad muhamed mohamad mouhamed mouhamad muhammed mouhammed "
        "mohamet mouhamet mhamed mahomed mohamud muhamad"
    ),
    "ahmed": "ahmad ahmet ahmat",
    "oumar": "omar umar omer oumarou",
    "moussa": "musa mousa mussa moussah",
    "ousmane": (
        "othman usman osman osmane ousman othmane outhmane uthman otman otmane usmane osmani"
    ),
    "ibrahim": "ibrahima brahim brahima ebrahim ibrahime",
    "boubacar": "abubakar aboubakar bubakar aboubacar abubakr boubakar aboubakr",
    "youssouf": "yusuf youssef yousef yousouf yussuf yousuf youcef yossef yusef yusif",
    "fatima": "fatimata fatma fatouma fatoumata fatimatou fatimetou fatoumatou fatime fatimah",
    "aicha": "aisha aysha ayesha aichetou aichatou aischa aiesha",
    "sidi": "sidy seedi",
    "cheikh": "sheikh shaykh cheick cheik sheik chaikh shaikh chekh",
    "ali": "aly",
    "mariam": "maryam mariem meriem meryem maryem",
    "hassan": "hassane hacen hassen hasan hacene",
    "hussein": "houssein hussain hocine hossein husein houcine housseine",
    "mustapha": "moustapha mustafa moustafa mostafa mostapha",
    "elhadj": "elhadji alhadji alhaji alhadj elhaj elhaji alhaj",
    "abdallah": (
        "abdallahi abdellahi abdullah abdoulaye abdalla abdullahi abdellah abdoulahi abdulahi "
        "abdelallah abdellahy abdallahy"
    ),
    "abdelkader": (
        "abdelkadir abdulkadir abdoulkader abdelqader abdulqadir abdelkadeer abdelkhader "
        "abdelqadir abdalkader"
    ),
    # West African surnames and given names written with c/k, dj/di, kh/k across French,
    # English and Portuguese conventions
    "camara": "kamara",
    "coulibaly": "kulibali koulibaly couloubaly kouloubaly culibaly",
    "diallo": "djallo jallo dyallo",
    "kalifa": "khalifa",
    "abdelrahman": (
        "abderrahmane abderahmane abdourahmane abdurrahman abdulrahman abdelrahmane abderrahman "
        "abdarrahman abdourahman abdurahman abderahman"
    ),
}

# Article forms glued to the following token ("El Hadj" == "El-Hadj" == "Elhadj" == "Al Hadj").
_ARTICLES = frozenset({"el", "al", "ul"})
_ABD = "abd"
_ABDEL = "abdel"
_OULD_ABBREVIATION = "o"
_PARTICLES = frozenset({"ould", "mint", "ben"})

# --------------------------------------------------------------------------------------------
# Arabic script.
# --------------------------------------------------------------------------------------------
_ARABIC_WORDS: dict[str, str] = {
    "محمد": "mohamed",
    "أحمد": "ahmed",
    "ولد": "ould",
    "بنت": "mint",
    "منت": "mint",
    "بن": "ben",
    "ابن": "ben",
    "عبد": "abd",
    "الله": "allah",
    "عبدالله": "abdallah",
    "عبدالقادر": "abdelkader",
    "عبدالرحمن": "abdelrahman",
    "عمر": "oumar",
    "موسى": "moussa",
    "عثمان": "ousmane",
    "إبراهيم": "ibrahim",
    "يوسف": "youssouf",
    "فاطمة": "fatima",
    "عائشة": "aicha",
    "علي": "ali",
    "سيدي": "sidi",
    # The article is dropped here because "Cheikh" is the usual passport spelling of الشيخ.
    "الشيخ": "cheikh",
    "شيخ": "cheikh",
    "مريم": "mariam",
    "حسن": "hassan",
    "حسين": "hussein",
    "مصطفى": "mustapha",
    "أبوبكر": "boubacar",
    "بوبكر": "boubacar",
    "الحاج": "elhadj",
    "محمود": "mahmoud",
    "خديجة": "khadija",
    "إسماعيل": "ismail",
    "عيسى": "issa",
    "يحيى": "yahya",
    "سالم": "salem",
}

# Consonant-skeleton fallback; short vowels are not written in Arabic so none are invented.
# fmt: off
_ARABIC_LETTERS: dict[str, str] = {
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ٱ": "a", "ء": "", "ؤ": "u", "ئ": "i",
    "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ذ": "dh",
    "ر": "r", "ز": "z", "س": "s", "ش": "ch", "ص": "s", "ض": "d", "ط": "t", "ظ": "z",
    "ع": "", "غ": "gh", "ف": "f", "ق": "k", "ك": "k", "ل": "l", "م": "m", "ن": "n",
    "ه": "h", "ة": "a", "و": "u", "ى": "a", "ي": "i",
    # Persian/Urdu letters sometimes met in documents
    "پ": "p", "چ": "ch", "ژ": "j", "گ": "g", "ڭ": "g", "ک": "k", "ی": "i", "ۀ": "a", "ھ": "h",
}
# fmt: on
_ARABIC_INITIAL: dict[str, str] = {"و": "w", "ي": "y"}

_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_RUN = re.compile("[\u0620-\u065f\u066e-\u06d3\u06d5-\u06ff\u0640\u0670]+")
_ARABIC_COMPOUND = re.compile("(?<![\u0620-\u064a])(عبد|ابو)\\s+(?=[\u0620-\u064a])")
# Spelling variants of one letter, folded before the dictionary and the letter fallback: alef
# with hamza/madda/wasla -> alef, alef maksura -> yeh, teh marbuta -> heh (a final heh is read
# "a" like a teh marbuta, see _transliterate_arabic_letters), hamza carriers -> their letter,
# and the Persian/Urdu forms of yeh, kaf and heh met on keyboards.
# fmt: off
_ARABIC_VARIANTS = str.maketrans({
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي",
    "ی": "ي", "ک": "ك", "ھ": "ه", "ۀ": "ه",
})
# fmt: on
_ARABIC_FINAL_HEH = "ه"

# --------------------------------------------------------------------------------------------
# Latin clean-up.
# --------------------------------------------------------------------------------------------
# fmt: off
_UNDECOMPOSED_LATIN = str.maketrans({
    "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i",
    "ŋ": "n", "ɲ": "ny", "ɓ": "b", "ɗ": "d", "ƴ": "y", "ƙ": "k", "ħ": "h", "ŧ": "t",
    "ɛ": "e", "ɔ": "o", "ʋ": "v",
})
# fmt: on
# Invisible code points removed before keying: every format character (category Cf) and the
# other Default_Ignorable_Code_Point characters (Unicode DerivedCoreProperties.txt).
# fmt: off
_INVISIBLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)
# fmt: on


def _invisible_characters() -> frozenset[str]:
    listed = {chr(c) for low, high in _INVISIBLE_RANGES for c in range(low, high + 1)}
    planes = (range(0x10000), range(0x10000, 0x20000))
    formats = {chr(c) for plane in planes for c in plane if unicodedata.category(chr(c)) == "Cf"}
    return frozenset(listed | formats)


_INVISIBLE = _invisible_characters()


def _lookalike_table() -> dict[int, str]:
    """TS #39 Latin prototypes, the lower-case additions, precomposed letters whose base is a
    look-alike (``Ё`` -> ``E`` + diaeresis, dropped later with the other accents) and the
    Cherokee small letters (which case-fold to the capitals, after this table is applied)."""
    table = {**TS39_LATIN_PROTOTYPES, **LOWERCASE_LOOKALIKES}
    for code in (*range(0x0370, 0x0590), *range(0x1F00, 0x2000)):
        char = chr(code)
        decomposed = unicodedata.normalize("NFD", char)
        if char not in table and len(decomposed) > 1 and decomposed[0] in table:
            table[char] = table[decomposed[0]] + decomposed[1:]
    for code in (*range(0x13F8, 0x13FE), *range(0xAB70, 0xABC0)):
        char = chr(code)
        if char not in table and char.upper() in table:
            table[char] = table[char.upper()]
    return {ord(char): target for char, target in table.items()}


_LOOKALIKES = _lookalike_table()

_PRENASALISED = re.compile(r"\b([mn])['’ʼ‘`´]\s*(?=[a-z])")
_NOT_LATIN = re.compile(r"[^a-z]+")
_DOCUMENT_NOISE = re.compile(r"[^A-Z0-9]+")

# Skeleton rules, applied in order and repeated until nothing changes (hence idempotent).
_SKELETON_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"ph"), "f"),
    (re.compile(r"sh"), "ch"),
    (re.compile(r"dj"), "j"),
    (re.compile(r"ou|oo"), "u"),
    (re.compile(r"ee"), "i"),
    (re.compile(r"(?<=.)y(?![aeiou])"), "i"),
    (re.compile(r"(.)\1+"), r"\1"),
    (re.compile(r"^abd[aeiu]l"), _ABDEL),
)


@lru_cache(maxsize=1 << 16)  # names are few and repeat: most tokens are seen before
def _skeleton(token: str) -> str:
    """Generic phonetic fold of one lowercase a-z token.

    ph->f, sh->ch, dj->j, ou/oo->u, ee->i, a non-initial y not before a vowel -> i, doubled
    letters collapsed, and the prefix abd+vowel+l (Abdel/Abdal/Abdul/Abdoul) -> ``abdel``.
    'kh', 'ch', 'gh' and final 'e' are kept.
    """
    previous = None
    while previous != token:
        previous = token
        for pattern, replacement in _SKELETON_RULES:
            token = pattern.sub(replacement, token)
    return token


def _compile_variants(table: Mapping[str, str]) -> dict[str, str]:
    compiled: dict[str, str] = {}
    for canonical, variants in table.items():
        for variant in (canonical, *variants.split()):
            key = _skeleton(variant)
            if compiled.get(key, canonical) != canonical:
                raise ValueError(f"name variant {variant!r} maps to two canonical names")
            compiled[key] = canonical
    return compiled


_VARIANTS: dict[str, str] = _compile_variants(_VARIANT_TABLE)


def _canonical_token(token: str) -> str:
    """Skeleton, then the canonical spelling when the skeleton is a known variant."""
    skeleton = _skeleton(token)
    return _VARIANTS.get(skeleton, skeleton)


def _arabic_word_key(word: str) -> str:
    """Arabic text without harakat and tatweel, its letter variants folded (one spelling)."""
    return _ARABIC_MARKS.sub("", word).translate(_ARABIC_VARIANTS)


_ARABIC_DICTIONARY: dict[str, str] = {_arabic_word_key(k): v for k, v in _ARABIC_WORDS.items()}


def _transliterate_arabic_letters(word: str) -> str:
    """Letter by letter; a final heh (or teh marbuta, folded into it) is read ``a``."""
    letters = [_ARABIC_INITIAL.get(word[0], _ARABIC_LETTERS.get(word[0], ""))] if word else []
    letters.extend(_ARABIC_LETTERS.get(char, "") for char in word[1:-1])
    if len(word) > 1:
        letters.append("a" if word[-1] == _ARABIC_FINAL_HEH else _ARABIC_LETTERS.get(word[-1], ""))
    return "".join(letters)


def _transliterate_arabic_word(key: str) -> str:
    """One folded run of Arabic letters -> Latin words (space separated)."""
    known = _ARABIC_DICTIONARY.get(key)
    if known is not None:
        return known
    if key.startswith("عبد") and len(key) > 3:
        return f"abd {_transliterate_arabic_word(key[3:])}"
    if key.startswith("ال") and len(key) > 2:
        return f"el {_transliterate_arabic_word(key[2:])}"
    return _transliterate_arabic_letters(key)


def _transliterate_arabic(text: str) -> str:
    if not _ARABIC_RUN.search(text):
        return text
    text = _ARABIC_COMPOUND.sub(r"\1", _arabic_word_key(text))
    return _ARABIC_RUN.sub(lambda match: f" {_transliterate_arabic_word(match.group())} ", text)


_RIGHT_TO_LEFT_OVERRIDE = "\u202e"
_OVERRIDDEN_RUN = re.compile("\u202e([^\u202a-\u202e\u2066-\u2069\n]*)")
_STRONG_RIGHT_TO_LEFT = frozenset({"R", "AL"})


def _as_displayed(run: re.Match[str]) -> str:
    """A run under a right-to-left override, in the order it is displayed: reversed when it
    holds no right-to-left letters (``<RLO>OGOARDEUO`` shows as ``OUEDRAOGO``). A run with
    Arabic letters is left as stored: they read right to left with or without the override."""
    letters = run.group(1)
    if any(unicodedata.bidirectional(char) in _STRONG_RIGHT_TO_LEFT for char in letters):
        return letters
    return letters[::-1]


def fold_lookalikes(text: str) -> str:
    """NFKC, invisible characters removed, Latin look-alikes of other scripts made Latin.

    Latin text under a right-to-left override is taken in the order it is displayed (the
    officer reads it so), before the override itself is removed with the other invisibles.

    The first steps of every name key (``normalise_name``, ``name_key``, ``name_similarity``,
    hence watchlist matching, name search and the exchange's pseudonyms). Plain Latin text,
    accents included, comes back as NFKC gives it.

    >>> fold_lookalikes("OUEDR\u0410OGO\u200b") == "OUEDRAOGO"
    True
    """
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():
        return text
    if _RIGHT_TO_LEFT_OVERRIDE in text:
        text = _OVERRIDDEN_RUN.sub(_as_displayed, text)
    text = "".join(char for char in text if char not in _INVISIBLE)
    return text.translate(_LOOKALIKES)


def _is_mark(char: str) -> bool:
    """A combining mark: an accent (combining class > 0) or any other Mn/Me character."""
    return bool(unicodedata.combining(char)) or unicodedata.category(char) in ("Mn", "Me")


def _latin_tokens(text: str) -> list[str]:
    """Arabic-transliterated text -> lowercase a-z tokens without accents or punctuation."""
    text = _PRENASALISED.sub(r"\1", text.casefold())
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(char for char in text if not _is_mark(char))
        text = text.translate(_UNDECOMPOSED_LATIN)
    return _NOT_LATIN.sub(" ", text).split()


def _resolve_particles(tokens: list[str]) -> list[str]:
    """Glue Abd/Abdel and articles to the following token; expand a lone 'O' to 'ould'."""
    resolved: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        has_next = index + 1 < len(tokens)
        if token == _ABD and has_next and tokens[index + 1] in _ARTICLES:
            token = _ABDEL
            index += 1
            has_next = index + 1 < len(tokens)
        if token in (_ABD, _ABDEL, *_ARTICLES) and has_next:
            prefix = "el" if token in _ARTICLES else token
            token = prefix + tokens[index + 1]
            index += 1
        elif token == _OULD_ABBREVIATION and len(tokens) > 1:
            token = "ould"
        resolved.append(_canonical_token(token))
        index += 1
    return resolved


@lru_cache(maxsize=1 << 15)  # a name part (KEITA, MOHAMED) recurs across travellers too
def _name_tokens(text: str) -> tuple[str, ...]:
    text = _transliterate_arabic(fold_lookalikes(text))
    tokens = _latin_tokens(text)
    # Repeat until stable: a merge can produce a new particle ("el l x" -> "el x"), and only a
    # fixed point makes normalise_name idempotent. Each productive pass removes a token.
    while True:
        resolved = _resolve_particles([_skeleton(token) for token in tokens])
        if resolved == tokens:
            return tuple(resolved)
        tokens = resolved


def normalise_name(text: str) -> str:
    """Return the matching key of a name: Latin a-z tokens separated by single spaces.

    Deterministic and idempotent (``normalise_name(normalise_name(x)) == normalise_name(x)``).
    Token order is preserved; use ``name_key`` for an order-independent key.

    >>> normalise_name("MOHAMMED O. Ahmad") == normalise_name("Mohamed Ould Ahmed")
    True
    """
    return " ".join(_name_tokens(text))


def name_key(surname: str, given_names: str) -> str:
    """Order-independent search key: the normalised tokens of both parts, sorted.

    Each part is normalised on its own, so swapping surname and given names gives the same key.
    """
    return " ".join(sorted(_name_tokens(surname) + _name_tokens(given_names)))


def similarity_form(text: str) -> str:
    """What ``name_similarity`` compares: the sorted tokens of the name's key without the
    filiation particles (ould/mint/ben), which carry no identity. Compute it once for a name
    compared many times (the watchlist matcher keeps it for every listed name)."""
    tokens = _name_tokens(text)
    meaningful = [token for token in tokens if token not in _PARTICLES] or list(tokens)
    return " ".join(sorted(meaningful))


def form_similarity(left: str, right: str) -> float:
    """``name_similarity`` of two names given by their ``similarity_form``."""
    if not left or not right:
        return 0.0
    sort_score = fuzz.token_sort_ratio(left, right)
    set_score = fuzz.token_set_ratio(left, right)
    return round((sort_score + set_score) / 2, 2)


def name_similarity(a: str, b: str) -> float:
    """Similarity of two full names in 0..100 on their normalised forms.

    Mean of rapidfuzz ``token_sort_ratio`` (penalises missing name parts) and
    ``token_set_ratio`` (tolerates one name being a subset of the other). Particles
    ould/mint/ben are ignored. Empty names never match anything (0.0).
    """
    return form_similarity(similarity_form(a), similarity_form(b))


def query_form(text: str) -> tuple[str, ...]:
    """The name parts a name search looks for: the query's key tokens without the filiation
    particles (ould/mint/ben), in any order; all of them if the query is only particles."""
    tokens = _name_tokens(text)
    return tuple(token for token in tokens if token not in _PARTICLES) or tokens


QUERY_PART_CUTOFF = 80.0  # a query part matches a name part at this rapidfuzz ratio or more
UNMENTIONED_PART_COST = 0.5  # ranking only: a name with parts the query did not give ranks lower


def query_score(query: tuple[str, ...], name_key: str) -> float:
    """How well a traveller's name (its ``name_key``) answers a name search (0..100).

    Each query part is paired with the closest name part not taken yet (rapidfuzz ``ratio``
    on the keys, so accents, transliteration variants and Arabic script are already folded);
    a part with no pair scoring ``QUERY_PART_CUTOFF`` fails the whole name (0). The score is
    the mean of the pairs, less ``UNMENTIONED_PART_COST`` for each name part the query did
    not give, so that "Traore" finds every TRAORE and ranks TRAORE AWA before TRAORE AWA
    KADIATOU. Any subset of the names, in any order, finds the person."""
    parts = [token for token in name_key.split() if token not in _PARTICLES]
    if not query or not parts or len(query) > len(parts):
        return 0.0
    total = 0.0
    for wanted in sorted(query, key=len, reverse=True):
        scores = [fuzz.ratio(wanted, part) for part in parts]
        best = max(range(len(parts)), key=scores.__getitem__)
        if scores[best] < QUERY_PART_CUTOFF:
            return 0.0
        total += scores[best]
        del parts[best]
    return round(total / len(query) - UNMENTIONED_PART_COST * len(parts), 2)


def candidate_patterns(query: tuple[str, ...]) -> list[str]:
    """SQL ``LIKE`` patterns over ``name_key`` that find every name holding a query part
    (the candidates ``rank_by_query`` then scores): a part of 3 letters or more anywhere in
    the key (it may be a fragment of a longer part: a typo, a variant the table lacks), a
    shorter one (BA, SY, KA) only as a whole part."""
    patterns: list[str] = []
    for part in query:
        if len(part) >= 3:
            patterns.append(f"%{part}%")
        else:
            patterns += [part, f"{part} %", f"% {part} %", f"% {part}"]
    return patterns


PREFILTER = 400  # names re-scored by ``query_score`` after the C-level first pass


def rank_by_query(
    query: tuple[str, ...], keys: list[str], *, limit: int
) -> list[tuple[int, float]]:
    """(index into ``keys``, score) of the names that answer the query, best first, at most
    ``limit``. A first pass in C (rapidfuzz ``token_set_ratio``, which scores a name holding
    every query part 100) keeps the ``PREFILTER`` likeliest names of any number; only those
    are scored by ``query_score``."""
    if not query or not keys:
        return []
    text = " ".join(query)
    likely = process.extract(
        text,
        keys,
        scorer=fuzz.token_set_ratio,
        score_cutoff=QUERY_PART_CUTOFF - 20,
        limit=PREFILTER,
    )
    scored = [(index, query_score(query, keys[index])) for _, _, index in likely]
    hits = [(index, score) for index, score in scored if score > 0]
    return sorted(hits, key=lambda hit: (-hit[1], keys[hit[0]]))[:limit]


def names_match(a: str, b: str, threshold: float = 85.0) -> bool:
    """True when ``name_similarity(a, b)`` reaches ``threshold``."""
    return name_similarity(a, b) >= threshold


def normalise_document_number(number: str) -> str:
    """Uppercase and keep only A-Z and 0-9 (drops spaces, '-', '<', '/', '.', ...).

    The letter O and the digit 0 (and I/1, S/5...) are NOT folded: they are distinct characters
    in document numbers, and OCR/MRZ confusions must be fixed at capture, not hidden here.
    """
    return _DOCUMENT_NOISE.sub("", unicodedata.normalize("NFKC", number).upper())
