"""Text normalisation for the reward gates: the words a reader *sees*, whatever code points spell them.

:func:`fold` maps text to plain lower-case Latin so that obfuscated text meets the same rules as plain text:

1. Unicode NFKD (fullwidth ``ＡＬＬ``, mathematical ``𝐀𝐋𝐋``, circled ``Ⓐ``, ligatures → ``ALL``, ``fi``; accents
   split off);
2. removal of format and zero-width characters (category Cf: ``U+200B``, ``U+200D``, ``U+2060``, ``U+FEFF``,
   soft hyphen, bidi controls, tag characters), combining marks (Mn/Me: accents, variation selectors,
   ``U+034F``) and invisible fillers (Hangul fillers, braille blank); control characters become spaces;
3. folding of confusables (:data:`CONFUSABLES`: Cyrillic, Greek, Armenian, IPA, small capitals, negative
   squared/circled letters, regional indicators) to the Latin letters they look like;
4. case folding.

:func:`words` then splits folded text into tokens and undoes letter-level obfuscation against a
vocabulary: runs of single letters (``a l l  r e q u …``) are joined, and a joined run or a long
token is cut into the vocabulary words it is made of (``allrequirementsfulfilled`` → ``all requirements
fulfilled``); a word split in two by markup (``require ments``) is rejoined when the whole is a
vocabulary word; digits and signs inside a word are read as the letters they stand for (``r3qu1r3d``).

Everything is linear in the input (bounded per-position work, no backtracking regex) and never raises.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CONFUSABLES", "fold", "words", "segment"]

_PAIRS = {
    # Cyrillic (upper, lower) → Latin look-alike
    "А": "A",
    "В": "B",
    "Е": "E",
    "Ё": "E",
    "К": "K",
    "М": "M",
    "Н": "H",
    "О": "O",
    "Р": "P",
    "С": "C",
    "Т": "T",
    "У": "Y",
    "Х": "X",
    "Ѕ": "S",
    "І": "I",
    "Ї": "I",
    "Ј": "J",
    "Ԛ": "Q",
    "Ԝ": "W",
    "Ү": "Y",
    "Һ": "H",
    "Ӏ": "I",
    "Ꙇ": "I",
    "Ь": "b",
    "Ԁ": "D",
    "Ԍ": "G",
    "Ѵ": "V",
    "З": "3",
    "Ѡ": "W",
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "х": "x",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "ԛ": "q",
    "ԝ": "w",
    "ү": "y",
    "һ": "h",
    "ӏ": "l",
    "ԁ": "d",
    "ɡ": "g",
    "ь": "b",
    "п": "n",
    "г": "r",
    "и": "u",
    "л": "n",
    "ѵ": "v",
    "ѡ": "w",
    "ꙇ": "i",
    "ԍ": "g",
    "ʀ": "r",
    # Greek
    "Α": "A",
    "Β": "B",
    "Ε": "E",
    "Ζ": "Z",
    "Η": "H",
    "Ι": "I",
    "Κ": "K",
    "Μ": "M",
    "Ν": "N",
    "Ο": "O",
    "Ρ": "P",
    "Τ": "T",
    "Υ": "Y",
    "Χ": "X",
    "Ϲ": "C",
    "Ϳ": "J",
    "Ϝ": "F",
    "α": "a",
    "β": "b",
    "γ": "y",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
    "ϲ": "c",
    "ϳ": "j",
    "ς": "c",
    "μ": "u",
    "ϱ": "p",
    "ϵ": "e",
    # Cherokee capitals (their lower case is not Latin-looking, so only these)
    "Ꭺ": "A",
    "Ᏼ": "B",
    "Ꮯ": "C",
    "Ꭰ": "D",
    "Ꭼ": "E",
    "Ꮐ": "G",
    "Ꮋ": "H",
    "Ꭻ": "J",
    "Ꮶ": "K",
    "Ꮮ": "L",
    "Ꮇ": "M",
    "Ꮲ": "P",
    "Ꭱ": "R",
    "Ꮪ": "S",
    "Ꭲ": "T",
    "Ꮩ": "V",
    "Ꮃ": "W",
    "Ꮓ": "Z",
    "Ꮟ": "b",
    "Ꭵ": "i",
    # Armenian
    "Օ": "O",
    "Ս": "U",
    "Տ": "S",
    "օ": "o",
    "ս": "u",
    "ց": "g",
    "հ": "h",
    "ո": "n",
    "ռ": "n",
    "ք": "p",
    "զ": "q",
    "ա": "w",
    # Latin variants that NFKD leaves alone: IPA, small capitals, dotless letters, Latin-1 odds
    "ı": "i",
    "ȷ": "j",
    "ɑ": "a",
    "ɩ": "i",
    "ɪ": "i",
    "ʟ": "l",
    "ɴ": "n",
    "ʏ": "y",
    "ʜ": "h",
    "ɢ": "g",
    "ᴀ": "a",
    "ʙ": "b",
    "ᴄ": "c",
    "ᴅ": "d",
    "ᴇ": "e",
    "ꜰ": "f",
    "ᴊ": "j",
    "ᴋ": "k",
    "ᴍ": "m",
    "ᴏ": "o",
    "ᴘ": "p",
    "ꞯ": "q",
    "ꜱ": "s",
    "ᴛ": "t",
    "ᴜ": "u",
    "ᴠ": "v",
    "ᴡ": "w",
    "ᴢ": "z",
    "ɛ": "e",
    "ɔ": "c",
    "ł": "l",
    "đ": "d",
    "ø": "o",
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ŀ": "l",
    "ħ": "h",
    "ƅ": "b",
    "Ł": "L",
    "Đ": "D",
    "Ø": "O",
    "Æ": "AE",
    "Œ": "OE",
    "Ħ": "H",
}
CONFUSABLES: dict[int, str] = {ord(k): v for k, v in _PAIRS.items()}
CONFUSABLES.update({ord(k.lower()): v.lower() for k, v in _PAIRS.items() if "Ꭰ" <= k <= "Ᏼ"})
# negative circled (🅐), negative squared (🅰) capitals and regional indicators (🇦): no NFKD mapping
for _base in (0x1F150, 0x1F170, 0x1F1E6):
    for _i in range(26):
        CONFUSABLES[_base + _i] = chr(ord("A") + _i)
# invisible "letters" that render as blank space
for _cp in (0x115F, 0x1160, 0x3164, 0xFFA0, 0x2800, 0x17B4, 0x17B5):
    CONFUSABLES[_cp] = ""

_DROP = frozenset(("Cf", "Mn", "Me"))
_LETTERS = re.compile(r"[a-z0-9@$]*[a-z][a-z0-9@$]*|[0-9@$]+")
# digits and signs used as letters inside a word ("4ll r3qu1r3m3nt5 m3t"): "1" is tried as "i", then "l"
_LEET_I = str.maketrans("0134578@$", "oieastbas")
_LEET_L = str.maketrans("0134578@$", "oleastbas")
_SEGMENT_MAX = 100_000  # characters of joined runs / long tokens segmented per call, at most
_LONG = 7  # tokens at least this long and not in the vocabulary are segmented
_COVER = 0.6  # share of a long token the vocabulary words must cover to replace it
_GAP_MAX = 64  # characters between two letter pieces of one spaced-out word, at most


def fold(text: object) -> str:
    """Lower-case plain-Latin reading of ``text`` (see the module docstring). Never raises."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text.isascii():
        return text.casefold()
    try:
        s = unicodedata.normalize("NFKD", text)
    except (ValueError, TypeError):  # pragma: no cover - lone surrogates are still str
        s = text
    out = []
    for ch in s:
        if ch.isascii():
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in _DROP:
            continue
        if cat == "Cc" or cat == "Zs" or cat == "Zl" or cat == "Zp":
            out.append(" ")
            continue
        out.append(CONFUSABLES.get(ord(ch), ch))
    s = "".join(out).casefold()
    return s


def segment(token: str, vocab: frozenset[str] | set[str], maxlen: int) -> tuple[list[str], int]:
    """Greedy longest-match split of ``token`` into words of ``vocab`` (unmatched letters skipped):
    the words found and how many letters they cover. O(len(token) * maxlen)."""
    found: list[str] = []
    covered = 0
    i, n = 0, len(token)
    while i < n:
        for length in range(min(maxlen, n - i), 1, -1):
            piece = token[i : i + length]
            if piece in vocab:
                found.append(piece)
                covered += length
                i += length
                break
        else:
            i += 1
    return found, covered


def words(folded: str, vocab: frozenset[str] | set[str] = frozenset()) -> list[str]:
    """Letter tokens of already :func:`fold`-ed text, with letter-by-letter spacing joined and joined
    or long tokens cut into ``vocab`` words (see the module docstring). Linear; never raises."""
    raw: list[tuple[str, int, int]] = []
    for m in _LETTERS.finditer(folded):
        tok = m.group(0)
        if not tok.isalpha():
            if not any(c.isalpha() for c in tok):
                continue  # a number, not a word
            alt = tok.translate(_LEET_I)
            tok = (
                alt
                if alt in vocab or "1" not in tok
                else (tok.translate(_LEET_L) if tok.translate(_LEET_L) in vocab else alt)
            )
        raw.append((tok, m.start(), m.end()))

    # 1. join runs of letter-level pieces: single letters (a l l), and with a vocabulary also short non-words
    #    (re qu ir em en ts); pieces are close when at most 2 non-space characters separate them
    def piece(tok: str) -> bool:
        return len(tok) == 1 or (bool(vocab) and len(tok) <= 3 and tok not in vocab)

    def close(a: int, b: int) -> bool:
        if raw[b][1] - raw[a][2] > _GAP_MAX:
            return False
        return len("".join(folded[raw[a][2] : raw[b][1]].split())) <= 2

    units: list[tuple[str, list[str] | None]] = []  # (token, the pieces it was joined from)
    i, n = 0, len(raw)
    while i < n:
        if piece(raw[i][0]):
            j = i
            while j + 1 < n and piece(raw[j + 1][0]) and close(j, j + 1):
                j += 1
            run = [t for t, _, _ in raw[i : j + 1]]
            letters = sum(len(t) for t in run)
            if len(run) >= 3 and all(len(t) == 1 for t in run) or len(run) >= 2 and letters >= 5 and vocab:
                units.append(("".join(run), run))
                i = j + 1
                continue
        units.append((raw[i][0], None))
        i += 1
    if not vocab:
        return [t for t, _ in units]
    maxlen = max((len(w) for w in vocab), default=0)
    budget = _SEGMENT_MAX
    out: list[str] = []
    k, m = 0, len(units)
    while k < m:
        tok, pieces = units[k]
        if tok in vocab:
            out.append(tok)
            k += 1
            continue
        # 2. a word split in two or three by markup or stray spaces: "require ments"
        merged = next(
            (c for c in ("".join(u[0] for u in units[k : k + span]) for span in (2, 3) if k + span <= m) if c in vocab),
            None,
        )
        if merged is not None:
            out.append(merged)
            k += 2 if units[k][0] + units[k + 1][0] == merged else 3
            continue
        # 3. a joined run or a long token made of vocabulary words
        if (pieces is not None or len(tok) >= _LONG) and budget > 0:
            part = tok[:budget]
            budget -= len(part)
            found, covered = segment(part, vocab, maxlen)
            if found and covered >= _COVER * len(part):
                out.extend(found)
                k += 1
                continue
        out.extend(pieces if pieces is not None else [tok])
        k += 1
    return out
