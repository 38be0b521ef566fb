"""Detection and replacement of personal data (PII) in user text, English and Chinese.

``Scrubber(...).scrub(text)`` returns the text with each piece of personal data replaced by a typed
placeholder (``<EMAIL>``, ``<PHONE>``, ``<CARD>``, ``<ID>``, ``<IP>``, ``<ADDRESS>``, ``<URL>``,
``<PERSON>``) and the spans it replaced, as ``(start, end, type)`` in the *input's* character
offsets. The work is rules first, validated by the field's libraries, so that a typical comment
costs well under two milliseconds (measured by ``benchmarks/scrub.py``):

- EMAIL, IP, CARD, ID, URL, ADDRESS: regular expressions that propose candidates, each confirmed
  by a validator: the Luhn checksum and an issuer prefix for payment cards (as Presidio's
  ``CreditCardRecognizer`` does); the US rules for SSNs (no area 000, 666 or 9xx, no group 00,
  no serial 0000); the birth date and the ISO 7064 MOD 11-2 check digit for the Chinese 18-digit
  resident id; Python's ``ipaddress`` for IPv4 and IPv6. A URL is personal when its path names a
  user or profile (``/user/...``, ``/u/123``, ``/in/name``, ``/@name``, a social network's
  ``/name``) or its query carries an email or a user, id, phone or token parameter; other URLs
  (a product page, a short link) are left alone.
- PHONE: patterns for international ``+CC`` numbers, US (NANP) formats, Chinese mobiles
  (``1[3-9]`` + 9 digits) and Chinese landlines; international candidates are confirmed with
  Google's libphonenumber (the ``phonenumbers`` package: ``is_possible_number``).
- PERSON, English: a gazetteer of the US census first and last names (shipped in the ``names``
  package) over capitalised words, with a hand-made list of first names that are also everyday
  words (May, Will, Grace, Love ...) which count only after a cue ("my name is", "Mr.",
  "my husband", "thanks"), and the cue rules themselves for names outside the gazetteer.
- PERSON, Chinese: jieba's segmentation (its HMM finds unknown words such as most given names)
  and its dictionary's ``nr`` (person) tags, kept when the word starts with a common surname;
  plus cues (我叫, 联系人, 收件人 ...). Full ``jieba.posseg`` tagging finds a few more names but
  costs about 0.8 ms for a 22-character Weibo comment, against 0.06 ms for the segmentation.
- ADDRESS: English street addresses (number, street name, a street suffix, optional unit, city,
  state and ZIP) and P.O. boxes; Chinese addresses with a road, street or lane and a house
  number (省/市/区/路/号/栋/单元/室).

Microsoft Presidio is not used at run time: its analyzer needs a spaCy NER pipeline (the official
``en_core_web_sm`` is not on the package index; only third-party re-uploads are) and costs
several milliseconds per text. Its validators (Luhn, SSN rules, context words) are reproduced
here. A statistical NER model would find English names outside the gazetteer without a cue
(a rare given name alone, a lower-case name); that is the main remaining miss.

Overlapping candidates are resolved longest first (a URL holding an email is one ``<URL>``).
Placeholders are never detected again, so scrubbing is idempotent.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from socialrec.errors import MissingDependencyError

if TYPE_CHECKING:
    from socialrec.ingest.schema import Dataset

PII_TYPES: tuple[str, ...] = ("EMAIL", "PHONE", "CARD", "ID", "IP", "ADDRESS", "URL", "PERSON")


class Span(NamedTuple):
    """One replaced piece of personal data: ``text[start:end]`` of the input was of ``type``."""

    start: int
    end: int
    type: str


class ScrubResult(NamedTuple):
    """The scrubbed text and the spans replaced, in the input's character offsets, in order."""

    text: str
    spans: tuple[Span, ...]


# ----------------------------------------------------------------------------- validators

def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_issuer(digits: str) -> bool:
    """Whether the number starts like a card of a known network and has that network's length."""
    n = len(digits)
    p2, p4 = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:
        return n == 16  # Mastercard
    if p2 in (34, 37):
        return n == 15  # American Express
    if p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    if p2 == 62:
        return 16 <= n <= 19  # UnionPay
    if p2 == 35:
        return 16 <= n <= 19  # JCB
    if p2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19  # Diners Club
    if p4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763) or 56 <= p2 <= 58:
        return 12 <= n <= 19  # Maestro
    return False


def card_valid(digits: str) -> bool:
    """A payment card number: 13-19 digits, a known issuer prefix and length, Luhn-valid."""
    return 12 <= len(digits) <= 19 and digits.isdigit() and _card_issuer(digits) and luhn_valid(digits)


_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"


def cn_id_check_digit(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a Chinese resident id's first 17 digits."""
    return _CN_ID_CHECK[sum(int(c) * w for c, w in zip(first17, _CN_ID_WEIGHTS)) % 11]


def cn_id_valid(number: str) -> bool:
    """A Chinese 18-character resident id: province code 11-82, a real birth date, check digit."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    if not 11 <= int(number[:2]) <= 82:
        return False
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    if not (1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return False
    return cn_id_check_digit(number[:17]) == number[17].upper()


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 else 28
    return 30 if month in (4, 6, 9, 11) else 31


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """A US Social Security number: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# ----------------------------------------------------------------------------- patterns

_EMAIL = re.compile(
    r"(?a)(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
_EMAIL_OBFUSCATED = re.compile(
    r"(?<![\w.])[A-Za-z0-9][A-Za-z0-9._-]{1,63}\s*(?:\(at\)|\[at\]|\sat\s)\s*[A-Za-z0-9-]{2,63}\s*"
    r"(?:\(dot\)|\[dot\]|\sdot\s)\s*(?:com|net|org|edu|gov|cn|co|io|uk|de|info)\b",
    re.IGNORECASE,
)
_URL = re.compile(r"(?a)(?:(?<![A-Za-z0-9])(?:https?|ftp)://|(?<![A-Za-z0-9.])www\.)[^\s<>\"'，。！？、；：）】》\u3000-\u9fff\uff00-\uffef]+",
                  re.IGNORECASE)
_URL_TRAIL = ".,;:!?)]}'\""
_IPV4 = re.compile(
    r"(?a)(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)"
)
_IPV6 = re.compile(
    r"(?a)(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])")
_SSN = re.compile(
    r"(?a)(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"(?i)(?:ssn|social security(?: number| no\.?| #)?)\D{0,12}?(?<!\d)(\d{3})(\d{2})(\d{4})(?!\d)")
_CN_ID = re.compile(r"(?<![\dA-Za-z])\d{17}[\dXx](?![\dA-Za-z])")
_CARD = re.compile(
    r"(?a)(?<![\d.-])\d(?:[ -]?\d){12,22}(?![\d])")
_EXTENSION = r"(?:\s?(?:x|ext\.?|extension)\s?\d{1,6})?"
_PHONE_INTL = re.compile(
    r"(?a)(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){1,6}"
    + _EXTENSION + r"(?![\d])", re.IGNORECASE)
_PHONE_US = re.compile(
    r"(?a)(?<![\w+-])(?:(?:\+?1|001)[ .-]?)?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[ .-])[2-9]\d{2}[ .-]\d{4}"
    + _EXTENSION + r"(?![\d-])"
    r"|(?<![\w+-])(?:\+?1[ .-]?)?[2-9]\d{2}[2-9]\d{6}" + _EXTENSION + r"(?![\d-])",
    re.IGNORECASE,
)
_PHONE_CUE = re.compile(
    r"(?i)(?:call|called|calling|service|line|hotline|客服|phone|tel|text|txt|cell|mobile|number|no\.|#|contact|reach|whatsapp|sms|fax|dial|ring|"
    r"电话|手机|联系|号码|打|致电|微信)\W{0,3}(?:me|us|at|is|on|:)?\W{0,3}$"
)
_PHONE_CN_MOBILE = re.compile(
    r"(?a)(?<![\w+])(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
_PHONE_CN_LANDLINE = re.compile(
    r"(?a)(?<![\w+])(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?:-\d{1,4})?(?![\d-])")

# street suffixes of USPS Publication 28 (full words and standard abbreviations) and UK usage
_STREET_SUFFIX = r"(?:" + "|".join(sorted(set("""
Alley Aly Annex Anx Arcade Arc Avenue Ave Av Bayou Byu Beach Bch Bend Bnd Bluff Blf Bluffs Blfs Bottom Btm
Boulevard Blvd Branch Br Bridge Brg Brook Brk Brooks Burg Burgs Bypass Byp Camp Cp Canyon Cyn Cape Cpe
Causeway Cswy Center Ctr Centers Circle Cir Circles Cliff Clf Cliffs Clfs Close Club Clb Common Commons
Corner Cor Corners Cors Course Crse Court Ct Courts Cts Cove Cv Coves Creek Crk Crescent Cres Crest Crst
Crossing Xing Crossroad Curve Dale Dl Dam Dm Divide Dv Drive Dr Drives Estate Est Estates Ests Expressway
Expy Extension Ext Extensions Falls Fls Ferry Fry Field Fld Fields Flds Flat Flt Flats Flts Ford Frd Fords
Forest Frst Forge Frg Forges Fork Frk Forks Frks Fort Ft Freeway Fwy Garden Gdn Gardens Gdns Gateway Gtwy
Glen Gln Glens Green Grn Greens Grove Grv Groves Harbor Hbr Harbors Haven Hvn Heights Hts Highway Hwy Hill
Hl Hills Hls Hollow Holw Inlet Inlt Island Is Islands Iss Isle Junction Jct Junctions Key Ky Keys Knoll
Knl Knolls Knls Lake Lk Lakes Lks Landing Lndg Lane Ln Light Lgt Lights Loaf Lf Lock Lck Locks Lcks Lodge
Ldg Loop Mall Manor Mnr Manors Meadow Mdw Meadows Mdws Mews Mill Ml Mills Mission Msn Motorway Mtwy Mount
Mt Mountain Mtn Mountains Neck Nck Orchard Orch Oval Overpass Opas Park Parks Parkway Pkwy Parkways Pass
Passage Psge Path Pike Pine Pne Pines Pnes Place Pl Plain Pln Plains Plns Plaza Plz Point Pt Points Pts
Port Prt Ports Prts Prairie Pr Radial Radl Ramp Ranch Rnch Rapid Rpd Rapids Rpds Rest Rst Ridge Rdg Ridges
Rdgs River Riv Road Rd Roads Rds Route Rte Row Rue Run Shoal Shl Shoals Shls Shore Shr Shores Shrs Skyway
Skwy Spring Spg Springs Spgs Spur Spurs Square Sq Squares Sqs Station Sta Stravenue Stra Stream Strm
Street St Streets Sts Summit Smt Terrace Ter Throughway Trwy Trace Trce Track Trak Trafficway Trfy Trail
Trl Trailer Trlr Tunnel Tunl Turnpike Tpke Underpass Upas Union Un Unions Uns Valley Vly Valleys Vlys Via
Viaduct Vdct View Vw Views Vws Village Vlg Villages Vlgs Ville Vl Vista Vis Walk Walks Wall Way Ways Well
Wl Wells Wls
""".split()), key=len, reverse=True)) + r")"
_EN_ADDRESS = re.compile(
    r"(?<![\w-])\d{1,6}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?"
    r"(?:(?:[A-Z][A-Za-z'-]+|\d{1,3}(?:st|nd|rd|th))\s+){1,3}" + _STREET_SUFFIX + r"\.?(?![A-Za-z])"
    r"(?:\s+(?:N|S|E|W|NE|NW|SE|SW)\.?(?![A-Za-z]))?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|#)\.?\s*#?\s*[A-Za-z0-9-]{1,6})?"
    r"(?:,\s*(?:[A-Z][a-z]+\s){0,2}[A-Z][a-z]+(?:,\s*|\s+)(?:[A-Z]{2}|[A-Z][a-z]+)(?:\s+\d{5}(?:-\d{4})?)?)?"
)
_PO_BOX = re.compile(r"(?i)\bP\.?\s?O\.?\s*Box\s+\d{1,6}\b")
_ZH_ADDRESS = re.compile(
    r"(?:[\u4e00-\u9fff]{2,7}?(?:省|自治区|特别行政区))?(?:[\u4e00-\u9fff]{2,4}?市)?(?:[\u4e00-\u9fff]{1,4}?(?:区|县|旗))?"
    r"(?:[\u4e00-\u9fff]{1,5}?(?:镇|乡|街道))?"
    r"(?:[\u4e00-\u9fff\d]{1,8}?(?:路|街|大道|大街|巷|胡同|弄)(?:[东西南北中]段)?\d{1,5}(?:-\d{1,4})?号"
    r"|[\u4e00-\u9fff]{2,8}?(?:小区|花园|公寓|大厦|新村|家园|园|城|苑|府|庭|居|阁|广场|中心)(?=\d))"
    r"(?:[\u4e00-\u9fff]{0,6}?(?:小区|花园|公寓|大厦|新村|家园|园|城|苑|府|庭|居|阁|广场|中心))?"
    r"(?:\d{1,4}(?:号楼|栋|幢|座|单元|楼|层|室|号))*"
)
_ZH_ADDRESS_LEAD = "我家住在于是到寄往送至的地址为：:，, 请到"

# ----------------------------------------------------------------------------- URLs

_PERSONAL_PATH = re.compile(
    r"/(?:users?|u|profiles?|people|person|members?|accounts?|customers?|in|pub|id|home|space|author|"
    r"~[\w.-]+|@[\w.-]+)(?:/|$|\?)",
    re.IGNORECASE,
)
_SOCIAL_HOSTS = ("facebook.com", "fb.com", "instagram.com", "twitter.com", "x.com", "weibo.com", "weibo.cn",
                 "linkedin.com", "github.com", "tiktok.com", "douyin.com", "zhihu.com", "douban.com",
                 "pinterest.com", "youtube.com", "reddit.com", "medium.com", "tumblr.com", "vk.com", "t.me")
_NOT_PROFILES = {"", "home", "search", "explore", "hashtag", "hashtags", "watch", "help", "about", "login",
                 "signup", "settings", "share", "sharer.php", "intent", "status", "p", "r", "topics", "groups",
                 "pages", "events", "policies", "legal", "privacy", "terms", "jobs", "feed", "tv", "reel",
                 "reels", "shorts", "results", "channel", "playlist", "embed", "i", "api", "download", "mobile"}
_PERSONAL_QUERY = re.compile(
    r"[?&#;](?:user(?:_?id|_?name)?|uid|userid|username|login|email|e-?mail|mail|phone|tel|mobile|name|"
    r"first_?name|last_?name|member(?:_?id)?|account(?:_?id)?|customer(?:_?id)?|profile(?:_?id)?|id|"
    r"token|session(?:_?id)?|sid|ssn|address|addr|card)=",
    re.IGNORECASE,
)


def url_is_personal(url: str) -> bool:
    """Whether a URL points at a person: a profile path, or a query that carries their data."""
    if "@" in url or _PERSONAL_QUERY.search(url):
        return True
    body = re.sub(r"^(?:[a-z]+://)?", "", url, flags=re.IGNORECASE)
    host, _, path = body.partition("/")
    host = host.lower().split(":")[0]
    if host.startswith("www."):
        host = host[4:]
    if host.startswith("m."):
        host = host[2:]
    path = "/" + path
    if _PERSONAL_PATH.search(path):
        return True
    if any(host == h or host.endswith("." + h) for h in _SOCIAL_HOSTS):
        first = path.strip("/").split("/")[0].split("?")[0].lower()
        return first not in _NOT_PROFILES
    return False


# ----------------------------------------------------------------------------- names

_NAME_CUES = re.compile(
    r"(?:\b(?:my name is|my name's|name is|i am called|i'm called|call me|named|signed|sincerely|regards|"
    r"thanks|thank you|cheers|dear|hi|hello|hey|ask for|contact|from|by|with|to|"
    r"my (?:husband|wife|daughter|son|friend|sister|brother|mom|mother|dad|father|boyfriend|girlfriend|"
    r"partner|aunt|uncle|niece|nephew|cousin|grandma|grandmother|grandpa|grandfather|granddaughter|"
    r"grandson|neighbor|neighbour|coworker|colleague|boss|fiance|fiancee|roommate|stylist|tailor|kid)|"
    r"(?:sales ?(?:rep|person|lady|woman|man|associate)|stylist|manager|agent|rep|associate|seller|"
    r"clerk|cashier|owner|customer|courier|driver|doctor|nurse|teacher)(?: named)?|"
    r"i'm|i am|this is|it's|love you|miss you|congrats|congratulations|happy birthday)"
    r"|(?:\bMr|\bMrs|\bMs|\bMiss|\bDr|\bProf|\bSir|\bMadam|\bMx)\.?)\s*[,:]?\s*$",
    re.IGNORECASE,
)
_STRONG_CUES = re.compile(
    r"(?:\b(?:my name is|my name's|name is|i am called|i'm called|call me|named|signed|sincerely|regards|"
    r"ask for|contact|hi,? i'm|hello,? i'm|i'm|"
    r"my (?:husband|wife|daughter|son|friend|sister|brother|mom|mother|dad|father|boyfriend|girlfriend|"
    r"partner|aunt|uncle|niece|nephew|cousin|grandma|grandmother|grandpa|grandfather|granddaughter|"
    r"grandson|neighbor|neighbour|coworker|colleague|boss|fiance|fiancee|roommate|stylist|tailor)|"
    r"(?:sales ?(?:rep|person|lady|woman|man|associate)|stylist|manager|associate|clerk|cashier)\s*,|thanks to)|(?:\bMr|\bMrs|\bMs|\bMiss|\bDr|\bProf|\bMx)\.?)\s*[,:]?\s*$",
    re.IGNORECASE,
)
_CAP_WORD = re.compile(r"(?<![\w@#/.])[A-Z][a-z]+(?:['-][A-Z]?[a-z]+)?(?![\w@])")
_INITIAL = re.compile(r"\s+[A-Z]\.(?!\w)")

# First names that are also everyday English words, months, colours, places or brands: a name
# only after a cue or before a surname.
_AMBIGUOUS_FIRST = frozenset("""
in so my love will an long don see summer many may spring winter cami tad season tiny ivory jean else hope
rich ok soon hang hung coral chance velvet bell olive star carry bill rose lady miss florida paige dot penny art
lean young sparkle major autumn mark sun hue ha lacy holly dusty golden man paris drew sunday easter soo emerald
royal princess thi honey eve heather june un jewel forest precious diamond page son september bo angel sunny
angle aline desire berry august violet ma al fe fairy hunter china valentine sage windy lacey houston shin miles
jade rusty joy january cherry francisco guy mi gala pa max grace april le sunshine echo irish numbers terra sung
queen diego asia flora garnet moon france pearl angeles candy robin era bee reed liberty ashley faith magnolia
chin daisy jasper dahlia sal ike ta rex lin su jewell teddy mercy trinity destiny harmony unique genesis
blue brown black white gray grey green red gold silver pink amber ruby crystal crimson cinnamon clay stone
river rain storm sky ocean brook brooks dale glen wood woods hill lake field fields park parks banks
baker carter cook cooper fisher hunter mason porter taylor turner walker ward wells young king knight
christian august charity constance prudence verity
chase cash price gay earnest frank grant hardy hale noble rich sterling sunny will wiley
jersey london victoria sydney austin dakota virginia carolina georgia india kenya africa america
zara kate ann lou lane vera ralph tommy calvin levi jordan
do be at as or on no go me us we he she it is
""".split())
_BRANDS = frozenset({"tracy reese", "byron lars", "kate spade", "michael kors", "calvin klein", "ralph lauren",
                     "tommy hilfiger", "vera wang", "anne klein", "tory burch", "marc jacobs", "betsey johnson",
                     "kenneth cole", "steve madden", "sam edelman", "alice olivia", "jessica simpson",
                     "nicole miller", "cynthia rowley", "eileen fisher", "diane von", "isabel marant",
                     "stella mccartney", "jenny han", "elle", "stevie", "maeve", "moth", "sanctuary"})


@functools.lru_cache(maxsize=1)
def _name_gazetteer() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names), lower-cased, from the US census lists in the `names` package."""
    try:
        import names  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("names", "privacy", "English person-name detection") from exc
    folder = Path(names.__file__).resolve().parent

    def read(fname: str, limit: int | None = None) -> frozenset[str]:
        with open(folder / fname, encoding="ascii") as fh:
            words = [line.split(" ", 1)[0].lower() for line in fh if line.strip()]
        return frozenset(words[:limit])

    first = read("dist.male.first") | read("dist.female.first")
    # the 20,000 most common surnames cover 85% of the population; the long tail is mostly words
    last = read("dist.all.last", 20000)
    return first, last


_ZH_SURNAMES_1 = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金"
    "石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁"
    "岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤"
    "阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞"
    "敖巩明佘池查麻苑迟邝赖洪舒屠谈蔺晋闻钮鞠竺匡籍璩宓郦茅嵇邴幸习扶桓冼丘伏堵"
)
_ZH_SURNAMES_2 = frozenset("欧阳 司马 上官 诸葛 东方 皇甫 令狐 公孙 慕容 尉迟 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 百里".split())
_ZH_NAME_TAGS = frozenset({"nr", "nrt", "nrfg"})
# surname characters that are rarely anything else at the start of a two-character word
_ZH_STRONG_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖董袁潘蒋蔡杜叶程苏魏吕丁沈姚卢姜崔钟谭陆汪范"
    "廖贾夏韦邹孟熊秦邱尹薛闫段侯史陶黎贺毛郝龚邵钱覃戴莫孔倪庄聂岳翟殷詹欧耿焦俞柳祝舒阮柯裴霍涂苗翁冉骆靳鲍喻祁"
    "蒲滕饶牟缪褚娄窦戚岑臧闵邬卞姬栾隋刁甄虞邝赖洪屠蔺"
)
# characters common in given names (a two-character name needs one of these after the surname)
_ZH_GIVEN_CHARS = frozenset(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力斌鹏宇浩凯梅琳婷雪颖倩晨欣佳嘉俊峰鑫波宁健亮飞"
    "龙林成国荣海春燕琴慧莉晶冬丹阳帆博昊然轩涵怡悦思雨晓梓雅琪璐瑶婧妍薇蕾菲蓉茜露洁琦璇娴淑贞珍凤翠芬芝兵彬斌东"
    "志坚晖豪毅睿哲铭鸣浩泽清源森晟旭昕昭晗晴月星云霖震霆宏鸿弘振兴旺福禄寿喜庆军武威德仁义礼智信忠孝廉勤诚"
    "坤鹤琛璟瑜瑾琼瑞祥祺禄伦彤桐楠榕枫松柏岚嵘峻崇巍岩磊鑫锐锋钢铁金银珊瑚珠玲珑琰琬琳璋瑛蕊芸芷苓莹萱蓓"
    "丹红彦艺忆怡恒恺悦惠慈敬斐旻昌昆昱晋景曦朗朝杉桦楷欢歌毓永江汉沛泉波洪浩涛淳渊湘溪滨潇澄灿炜烨焕煜熙燕"
)
# characters that end phrases, not names (a three-character unknown word holding one is not a name)
_ZH_NOT_GIVEN = frozenset("了的是在不也就都还很太里上下个些么吗呢吧啊哦说要会能到去来给把被让从对和与跟着过得地么嘛呀啦哈")
_ZH_NOT_NAMES = frozenset("""
孙子 谢谢 冷冰冰 何以堪 王老吉 顾客 温馨 阳光 明智 李家 白屏 蓝星 全棉 沙宣 高清 明白 文明 道德 宣传部 老公 老汉 张嘴 王八蛋 金刚 钱荒 方正 修正 陈年 金陵 成吉思汗 康师傅 司马南
高兴 高中 高考 高铁 高手 高级 高度 高端 高价 白色 白天 白菜 黄色 黄金 黄牛 金额 金属 金融 石头 石油 马上 马路 江湖
安全 安静 安装 安排 文字 文化 文章 文件 常常 常见 温度 温暖 温柔 明天 明显 明星 明年 和平 和谐 华丽 华人 关于 关系
关注 关心 关键 宁可 宁愿 包装 包括 包邮 尚未 单位 单独 成功 成本 成为 成都 成绩 路上 路边 周末 周围 周年 周边 万一
万能 万元 钟头 程序 程度 方便 方法 方面 方向 方式 于是 任何 任务 任意 余额 严重 严格 武汉 武器 龙虾 史上 向上 毛病
毛衣 段时间 雷人 雷锋 牛逼 牛奶 邮费 齐全 易碎 乔丹 庞大 颜色 章节 鲁迅 岳父 岳母 申请 关门 兰州 柳州 甘肃 包头
宁波 尚可 纪念 梅花 凌晨 毕业 季节 苗条 谷歌 盛情 曲线 游戏 游泳 辛苦 管理 柴油 蒙古 华为 华夏 喻为 房间 房子 房价
屈服 解决 解释 艾滋 时间 时候 时代 农民 农村 司机 卓越 古代 古老 吉林 吉他 简单 简直 车子 车站 项目 连续 连接 麦当劳
宫殿 费用 冷静 冷气 席位 卫生 卫视 米饭 柏林 宗教 全部 全国 全面 应该 应用 边上 师傅 和谐 商品 商家 沙发 荣誉 桑拿
明明 常州 黄山 江西 江苏 安徽 温州 武昌 贺卡 司令 于今 文学 金钱 石家庄 龙华 龙岗 邓丽君 童年 童鞋 童装 梁山 林子
雷雨 毛巾 孔子 孟子 老子 庄子 钱包 钱财 杨梅 杨树 宋朝 唐朝 秦朝 汉朝 明朝 周朝 苏州 杭州 郑州 贾宝玉 潘多拉
""".split())
_ZH_NAME_CUES = re.compile(
    r"(?:我叫|名叫|叫做|姓名[:：]?|联系人[:：]?|收件人[:：]?|收货人[:：]?|寄件人[:：]?|负责人[:：]?|经手人[:：]?|"
    r"签名[:：]?|本人|感谢|谢谢|朋友|同事|同学|老师|医生|师傅|快递员|客服|经理|老板|店主|室友|邻居|老公|老婆|丈夫|妻子|"
    r"儿子|女儿|妈妈|爸爸|哥哥|姐姐|弟弟|妹妹)\s*$"
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


@functools.lru_cache(maxsize=1)
def _jieba() -> tuple[Callable[..., list[str]], dict[str, str]]:
    """jieba's cutter (with its HMM for unknown words) and its dictionary's part-of-speech tags."""
    try:
        import logging

        import jieba  # type: ignore[import-untyped]
        import jieba.posseg  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError("jieba", "privacy", "Chinese person-name detection") from exc
    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    tokenizer.initialize()
    tags: dict[str, str] = jieba.posseg.dt.word_tag_tab  # filled when posseg is imported
    return tokenizer.lcut, tags


def _zh_surname_len(word: str) -> int:
    if len(word) >= 3 and word[:2] in _ZH_SURNAMES_2:
        return 2
    return 1 if word[0] in _ZH_SURNAMES_1 else 0


def _zh_is_name(word: str, tag: str | None, cue: bool = False) -> bool:
    """Whether a word jieba cut out (``tag`` from its dictionary, None when unknown) is a name."""
    if not 2 <= len(word) <= 4 or word in _ZH_NOT_NAMES or not all("\u4e00" <= c <= "\u9fff" for c in word):
        return False
    s = _zh_surname_len(word)
    if not s or len(word) - s > 2 or len(word) == s:
        return False
    if len(word) == 2 and word[0] == word[1]:
        return False
    given = word[s:]
    if any(c in _ZH_NOT_GIVEN for c in given):
        return False
    if cue and (tag is None or tag in _ZH_NAME_TAGS):
        return True
    if len(given) == 1:  # two characters: a common surname and a common given-name character
        return (tag is None or tag in _ZH_NAME_TAGS) and word[0] in _ZH_STRONG_SURNAMES and given in _ZH_GIVEN_CHARS
    if tag is None or tag in _ZH_NAME_TAGS:
        return s == 2 or word[0] in _ZH_STRONG_SURNAMES or any(c in _ZH_GIVEN_CHARS for c in given)
    return tag == "ns" and len(word) == 3 and word[-1] not in "市省县区镇村乡山河湖州江岛港湾街路"


# ----------------------------------------------------------------------------- the scrubber

class Scrubber:
    """Finds personal data in text and replaces it with typed placeholders.

    types: which of ``PII_TYPES`` to detect (default all).
    placeholder: a format string with ``{type}`` giving each replacement (default ``"<{type}>"``);
        it must not itself look like personal data, so that scrubbing stays idempotent.
    languages: ``"en"``, ``"zh"`` or both: which person-name and address rules run. Rules for the
        other types are language-independent.
    """

    def __init__(
        self,
        types: Sequence[str] = PII_TYPES,
        *,
        placeholder: str = "<{type}>",
        languages: Sequence[str] = ("en", "zh"),
    ) -> None:
        self.types = types
        self.placeholder = placeholder
        self.languages = languages
        unknown = [t for t in types if t not in PII_TYPES]
        if unknown:
            raise ValueError(f"unknown PII type(s) {unknown}; known: {', '.join(PII_TYPES)}")
        bad_lang = [lang for lang in languages if lang not in ("en", "zh")]
        if bad_lang:
            raise ValueError(f"unknown language(s) {bad_lang}; known: en, zh")
        if "{type}" not in placeholder:
            raise ValueError(f"placeholder must contain '{{type}}', got {placeholder!r}")
        self._types = frozenset(types)
        self._placeholders = tuple(placeholder.format(type=t) for t in PII_TYPES)

    def get_params(self) -> dict[str, object]:
        return {"types": self.types, "placeholder": self.placeholder, "languages": self.languages}

    def __repr__(self) -> str:
        return f"Scrubber(types={self.types!r}, placeholder={self.placeholder!r}, languages={self.languages!r})"

    # -- public API

    def find(self, text: str) -> list[Span]:
        """The spans of personal data in ``text``, non-overlapping, in order."""
        if not text:
            return []
        cands: list[tuple[int, int, str]] = []
        want = self._types
        has_digit = any(c.isdigit() for c in text)
        if "EMAIL" in want and "@" in text:
            cands += [(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(text)]
        if "EMAIL" in want and ("at" in text.lower()):
            cands += [(m.start(), m.end(), "EMAIL") for m in _EMAIL_OBFUSCATED.finditer(text)]
        if "URL" in want and ("://" in text or "www." in text.lower()):
            cands += self._urls(text)
        if has_digit:
            if "IP" in want:
                cands += self._ips(text)
            if "ID" in want:
                cands += self._ids(text)
            if "CARD" in want:
                cands += self._cards(text)
            if "PHONE" in want:
                cands += self._phones(text)
            if "ADDRESS" in want:
                cands += self._addresses(text)
        elif "IP" in want and "::" in text:
            cands += self._ips(text)
        if "PERSON" in want:
            if "en" in self.languages:
                cands += self._english_names(text)
            if "zh" in self.languages and _CJK.search(text):
                cands += self._chinese_names(text)
        return self._resolve(text, cands)

    def scrub(self, text: str) -> ScrubResult:
        """``text`` with each span of personal data replaced by its placeholder, and the spans."""
        spans = self.find(text)
        if not spans:
            return ScrubResult(text, ())
        out, pos = [], 0
        for s in spans:
            out.append(text[pos:s.start])
            out.append(self.placeholder.format(type=s.type))
            pos = s.end
        out.append(text[pos:])
        return ScrubResult("".join(out), tuple(spans))

    def scrub_many(self, texts: Iterable[str]) -> list[ScrubResult]:
        """``scrub`` of each text, in order."""
        return [self.scrub(t) for t in texts]

    # -- detectors

    def _urls(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        for m in _URL.finditer(text):
            url = m.group().rstrip(_URL_TRAIL)
            if url and url_is_personal(url):
                out.append((m.start(), m.start() + len(url), "URL"))
        return out

    def _ips(self, text: str) -> list[tuple[int, int, str]]:
        out = [(m.start(), m.end(), "IP") for m in _IPV4.finditer(text)]
        if ":" in text:
            for m in _IPV6.finditer(text):
                cand = m.group()
                if cand.count(":") < 2:
                    continue
                try:
                    ipaddress.IPv6Address(cand)
                except ValueError:
                    continue
                out.append((m.start(), m.end(), "IP"))
        return out

    def _ids(self, text: str) -> list[tuple[int, int, str]]:
        out = [(m.start(), m.end(), "ID") for m in _CN_ID.finditer(text) if cn_id_valid(m.group())]
        out += [(m.start(), m.end(), "ID") for m in _SSN.finditer(text) if ssn_valid(m[1], m[3], m[4])]
        out += [(m.start(1), m.end(3), "ID") for m in _SSN_BARE.finditer(text) if ssn_valid(m[1], m[2], m[3])]
        return out

    def _cards(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        for m in _CARD.finditer(text):
            # groups of digits; try runs of whole groups, longest first, so that an expiry date or
            # a CVV typed after the number does not hide it
            groups = [(g.start() + m.start(), g.end() + m.start()) for g in re.finditer(r"\d+", m.group())]
            found = None
            for i in range(len(groups)):
                for j in range(len(groups), i, -1):
                    digits = "".join(text[a:b] for a, b in groups[i:j])
                    if card_valid(digits):
                        found = (groups[i][0], groups[j - 1][1])
                        break
                if found:
                    break
            if found:
                out.append((found[0], found[1], "CARD"))
        return out

    def _phones(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        for rx in (_PHONE_US, _PHONE_CN_MOBILE, _PHONE_CN_LANDLINE):
            for m in rx.finditer(text):
                # ten bare digits are as often an order or tracking number: they need a cue
                if rx is _PHONE_US and m.group().isdigit() and not _PHONE_CUE.search(text[max(0, m.start() - 30):m.start()]):
                    continue
                out.append((m.start(), m.end(), "PHONE"))
        if "+" in text or "00" in text:
            for m in _PHONE_INTL.finditer(text):
                cand = m.group()
                if cand.startswith("00") and cand.isdigit() and not _PHONE_CUE.search(text[max(0, m.start() - 30):m.start()]):
                    continue
                if _possible_phone(cand):
                    out.append((m.start(), m.end(), "PHONE"))
        return out

    def _addresses(self, text: str) -> list[tuple[int, int, str]]:
        out = []
        if "en" in self.languages:
            out += [(m.start(), m.end(), "ADDRESS") for m in _EN_ADDRESS.finditer(text)]
            out += [(m.start(), m.end(), "ADDRESS") for m in _PO_BOX.finditer(text)]
        if "zh" in self.languages and _CJK.search(text):
            for m in _ZH_ADDRESS.finditer(text):
                start, end = m.start(), m.end()
                while start < end and text[start] in _ZH_ADDRESS_LEAD:
                    start += 1
                if end - start >= 4:
                    out.append((start, end, "ADDRESS"))
        return out

    def _english_names(self, text: str) -> list[tuple[int, int, str]]:
        words = list(_CAP_WORD.finditer(text))
        if not words:
            return []
        first, last = _name_gazetteer()
        out = []
        i = 0
        while i < len(words):
            w = words[i]
            low = w.group().lower()
            before = text[max(0, w.start() - 40):w.start()]
            cue = _NAME_CUES.search(before) is not None
            # the next capitalised word directly after this one (one space, or a middle initial)
            nxt = words[i + 1] if i + 1 < len(words) else None
            gap = text[w.end():nxt.start()] if nxt else ""
            adjacent = nxt is not None and (gap == " " or re.fullmatch(r" [A-Z]\. ", gap) is not None)
            nxt_low = nxt.group().lower() if nxt else ""
            surname_next = adjacent and nxt_low in last
            is_first = low in first
            strong = _STRONG_CUES.search(before) is not None
            accept = False
            if is_first and low not in _AMBIGUOUS_FIRST:
                accept = True
            elif is_first and (cue or (surname_next and nxt_low not in _AMBIGUOUS_FIRST)):
                accept = True
            elif strong and low not in _AMBIGUOUS_FIRST:
                accept = True  # "my name is Xochitl", "Mr. Okafor"
            if accept:
                end = w.end()
                j = i
                if adjacent and (nxt_low in last or strong or (cue and nxt_low not in _AMBIGUOUS_FIRST)):
                    end = nxt.end()  # type: ignore[union-attr]
                    j = i + 1
                else:
                    m = _INITIAL.match(text, w.end())
                    if m:
                        end = m.end()  # "Tonya B."
                name = text[w.start():end].lower()
                if name not in _BRANDS and low not in _BRANDS:
                    out.append((w.start(), end, "PERSON"))
                i = j + 1
                continue
            i += 1
        return out

    def _chinese_names(self, text: str) -> list[tuple[int, int, str]]:
        cut, tags = _jieba()
        out = []
        pos = 0
        words = cut(text)
        offsets = []
        for w in words:
            offsets.append(pos)
            pos += len(w)
        i = 0
        while i < len(words):
            w, start = words[i], offsets[i]
            tag = tags.get(w)
            if _zh_is_name(w, tag, _ZH_NAME_CUES.search(text[max(0, start - 4):start]) is not None):
                out.append((start, start + len(w), "PERSON"))
            elif (tag in _ZH_NAME_TAGS and len(w) <= 2 and i > 0 and tags.get(words[i - 1]) is None
                  and len(words[i - 1]) >= 2 and words[i - 1][-1] in _ZH_SURNAMES_1 and _CJK.match(words[i - 1])):
                # a surname glued to the word before it: 找王 / 秀英
                out.append((start - 1, start + len(w), "PERSON"))
            elif (len(w) == 1 and w in _ZH_SURNAMES_1 or w in _ZH_SURNAMES_2) and i + 1 < len(words):
                # a surname cut off its given name: 王 / 秀英
                nxt = words[i + 1]
                nxt_tag = tags.get(nxt)
                if (1 <= len(nxt) <= 2 and all("\u4e00" <= c <= "\u9fff" for c in nxt)
                        and (nxt_tag in _ZH_NAME_TAGS or tag in _ZH_NAME_TAGS and nxt_tag is None
                             or _ZH_NAME_CUES.search(text[:start]))):
                    out.append((start, start + len(w) + len(nxt), "PERSON"))
                    i += 2
                    continue
            i += 1
        # a cue directly followed by a surname and one or two characters: 我叫张伟 / 收件人：王秀英
        for m in re.finditer(r"(?:我叫|名叫|姓名[:：]\s*|联系人[:：]?\s*|收件人[:：]?\s*|收货人[:：]?\s*|寄件人[:：]?\s*)"
                             r"([\u4e00-\u9fff]{2,4})", text):
            name = m.group(1)
            s = _zh_surname_len(name)
            if s:
                n = min(len(name), s + 2)
                out.append((m.start(1), m.start(1) + n, "PERSON"))
        return out

    # -- overlap resolution

    def _resolve(self, text: str, cands: list[tuple[int, int, str]]) -> list[Span]:
        if not cands:
            return []
        order = {t: i for i, t in enumerate(("URL", "EMAIL", "ID", "CARD", "PHONE", "IP", "ADDRESS", "PERSON"))}
        cands.sort(key=lambda c: (-(c[1] - c[0]), order[c[2]], c[0]))
        taken: list[tuple[int, int, str]] = []
        for c in cands:
            if c[1] <= c[0] or self._inside_placeholder(text, c[0], c[1]):
                continue
            if all(c[1] <= t[0] or c[0] >= t[1] for t in taken):
                taken.append(c)
        taken.sort()
        return [Span(*c) for c in taken]

    def _inside_placeholder(self, text: str, start: int, end: int) -> bool:
        for p in self._placeholders:
            lo = max(0, start - len(p))
            idx = text.find(p, lo, end + len(p))
            while idx != -1 and idx < end:
                if idx < end and idx + len(p) > start:
                    return True
                idx = text.find(p, idx + 1, end + len(p))
        return False


def _possible_phone(candidate: str) -> bool:
    try:
        import phonenumbers
    except ImportError as exc:
        raise MissingDependencyError("phonenumbers", "privacy", "International phone-number detection") from exc
    number = candidate.strip()
    if number.startswith("00"):
        number = "+" + number[2:]
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


def scrub(text: str) -> ScrubResult:
    """Scrub ``text`` with a default ``Scrubber`` (all types, ``<TYPE>`` placeholders, en and zh)."""
    return _default().scrub(text)


@functools.lru_cache(maxsize=1)
def _default() -> Scrubber:
    return Scrubber()


def scrub_dataset(dataset: Dataset, scrubber: Scrubber | None = None,
                  owners: Sequence[str] = ("user", "item")) -> Dataset:
    """A copy of ``dataset`` whose ``texts`` (reviews, posts, comments, profiles) of the given
    owners are scrubbed; ``notes`` says how many texts changed. The dataset itself is unchanged.

    Call it right after loading, before anything embeds or stores the texts:
    ``scrub_dataset(load("weibo", data))``.
    """
    import dataclasses

    scrubber = scrubber if scrubber is not None else Scrubber()
    texts = dataset.texts
    if not len(texts):
        return dataset
    chosen = texts["owner"].isin(list(owners)).to_numpy()
    values = texts["text"].astype(str).to_numpy(copy=True)
    changed = 0
    for i in chosen.nonzero()[0]:
        result = scrubber.scrub(values[i])
        if result.spans:
            values[i] = result.text
            changed += 1
    new_texts = texts.copy()
    new_texts["text"] = values
    note = f"texts scrubbed of personal data ({changed:,} of {int(chosen.sum()):,} changed)"
    return dataclasses.replace(dataset, texts=new_texts, notes=(*dataset.notes, note))
